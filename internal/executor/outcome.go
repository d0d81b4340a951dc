package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/templating"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/xcomstore"
)

// ErrShutdown is the cause a worker cancels running tries with when its
// process stops: such a try did not fail, it is retried at once whatever
// its retries.
var ErrShutdown = errors.New("scheduler shutting down")

// Outcome is how a try ended, as the store records it.
type Outcome struct {
	State      string // a runstate task instance state
	Error      string
	RetryAt    time.Time                  // up_for_retry: when to queue it again
	Trigger    *store.NewTrigger          // deferred: the trigger to create
	XCom       map[string]json.RawMessage // success: encoded XComs
	SkipReason string                     // skipped: the operator's reason, if it gave one
	SkipTasks  []string                   // success: tasks the operator skips with it
	// AssetEvents: success: the task's outlets, recorded with it.
	AssetEvents []store.NewAssetEvent
	// Progress: the try was resumed for a trigger's periodic step and
	// deferred again (a deferred pod's logs copied so far); the try's log
	// gets the step's own lines, not a resumed/deferred pair each time.
	Progress bool
	// Quiet: a success of an operators.Quiet operator.
	Quiet bool
}

// Returned is how a try's operator call ended, with what the decision needs.
type Returned struct {
	Result *operators.Result
	Err    error
	// Cause is why the try's context ended, if it did (execution_timeout,
	// a shutdown, a kill); it is added to an error that does not say it.
	Cause error
	// Task is nil when the try failed before its task was known (or its
	// operator panicked): no retries then.
	Task      *dag.Task
	TryNumber int
	MaxTries  int
	// Deadline is when the try's execution_timeout expires (zero: none); a
	// deferral's trigger never outlives it.
	Deadline time.Time
	Now      time.Time
	// AssetEvents are a successful task's outlets (extra rendered).
	AssetEvents []store.NewAssetEvent
	// Quiet: the operator is an operators.Quiet one.
	Quiet bool
}

// Decide maps how an operator returned to the try's outcome.
func Decide(r Returned) Outcome {
	res, err := r.Result, r.Err
	switch {
	case err != nil && operators.IsSkip(err):
		return Outcome{State: runstate.Skipped, SkipReason: skipReason(err)}
	case err != nil:
		if r.Cause != nil && !errors.Is(err, r.Cause) {
			err = fmt.Errorf("%w (%w)", err, r.Cause) // both wrapped: a shutdown is known by its cause
		}
		return failure(r, err)
	case res != nil && res.Deferral != nil:
		deadline := res.Deferral.Deadline
		if !r.Deadline.IsZero() && (deadline.IsZero() || r.Deadline.Before(deadline)) {
			deadline = r.Deadline
		}
		return Outcome{State: runstate.Deferred, Trigger: &store.NewTrigger{
			Kind: res.Deferral.Kind, Args: res.Deferral.Args, Deadline: deadline, Method: res.Deferral.Method}}
	case res != nil && res.Skipped:
		return Outcome{State: runstate.Skipped}
	}
	out := Outcome{State: runstate.Success, AssetEvents: r.AssetEvents}
	if res != nil {
		out.SkipTasks = res.SkipTasks
	}
	if res != nil && len(res.XCom) > 0 {
		out.XCom = map[string]json.RawMessage{}
		for k, v := range res.XCom {
			raw, err := xcomstore.Encode(k, v, xcomstore.DefaultMaxSize)
			if err != nil {
				return failure(r, err)
			}
			out.XCom[k] = raw
		}
	}
	return out
}

// failure turns an error into failed or up_for_retry.
func failure(r Returned, err error) Outcome {
	out := Outcome{Error: err.Error()}
	switch {
	case errors.Is(err, ErrShutdown):
		out.State = runstate.UpForRetry
		out.RetryAt = r.Now
	case templating.Permanent(err):
		out.State = runstate.Failed
		if r.TryNumber <= r.MaxTries {
			out.Error += " (not retried: the template gives the same error on every try)"
		}
	case r.TryNumber <= r.MaxTries && r.Task != nil:
		out.State = runstate.UpForRetry
		out.RetryAt = r.Now.Add(RetryDelay(r.Task, r.TryNumber))
	default:
		out.State = runstate.Failed
	}
	return out
}

// RetryDelay is retry_delay, doubled per try with retry_exponential_backoff,
// capped by max_retry_delay.
func RetryDelay(t *dag.Task, try int) time.Duration {
	d := t.RetryDelay
	if t.RetryExponentialBackoff && try > 1 {
		d = time.Duration(float64(d) * math.Pow(2, float64(try-1)))
		if d <= 0 { // overflow
			d = math.MaxInt64
		}
	}
	if t.MaxRetryDelay > 0 && d > t.MaxRetryDelay {
		d = t.MaxRetryDelay
	}
	return d
}

// skipReason is the reason an operator gave for skipping, without the
// "skipped: " its error message starts with.
func skipReason(err error) string {
	if s, ok := errors.AsType[*operators.SkipError](err); ok {
		return s.Reason
	}
	return err.Error()
}

// resumeEvent is the stored trigger event; one that cannot be read is
// resumed as an error event, so the operator still cleans up.
func resumeEvent(raw []byte) operators.Event {
	ev, err := operators.DecodeEvent(raw)
	if err != nil {
		return operators.ErrorEvent("%v", err)
	}
	return ev
}
