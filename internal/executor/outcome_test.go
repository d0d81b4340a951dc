package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/templating"
	"github.com/podflow/podflow/operators"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	task := &dag.Task{ID: "t", RetryDelay: time.Minute}
	timeout := errors.New("execution_timeout 5s exceeded")
	exitErr := errors.New("bash command failed with exit code 3")
	for _, tc := range []struct {
		name string
		in   Returned
		want Outcome
		// wantErr, when set, is a substring of the outcome's error instead of
		// an exact Error.
		wantErr string
	}{
		{name: "nil result succeeds",
			in:   Returned{Task: task, TryNumber: 1, Now: now},
			want: Outcome{State: runstate.Success}},
		{name: "XComs are encoded with the success",
			in:   Returned{Result: &operators.Result{XCom: map[string]any{"return_value": []any{1, 2}}}, Task: task, TryNumber: 1, Now: now},
			want: Outcome{State: runstate.Success, XCom: map[string]json.RawMessage{"return_value": json.RawMessage(`[1,2]`)}}},
		{name: "an XCom that cannot be encoded fails the try (retries left: up for retry)",
			in:      Returned{Result: &operators.Result{XCom: map[string]any{"f": func() {}}}, Task: task, TryNumber: 1, MaxTries: 1, Now: now},
			want:    Outcome{State: runstate.UpForRetry, RetryAt: now.Add(time.Minute)},
			wantErr: "f"},
		{name: "skip error keeps the operator's reason",
			in:   Returned{Err: fmt.Errorf("resume: %w", &operators.SkipError{Reason: "nothing to do"}), Task: task, TryNumber: 1, MaxTries: 3, Now: now},
			want: Outcome{State: runstate.Skipped, SkipReason: "nothing to do"}},
		{name: "skipped result",
			in:   Returned{Result: &operators.Result{Skipped: true}, Task: task, TryNumber: 1, Now: now},
			want: Outcome{State: runstate.Skipped}},
		{name: "deferral without deadlines",
			in:   Returned{Result: &operators.Result{Deferral: &operators.Deferral{Kind: "pod", Method: "resume"}}, Task: task, TryNumber: 1, Now: now},
			want: Outcome{State: runstate.Deferred, Trigger: trigger("pod", "resume", time.Time{})}},
		{name: "deferral takes execution_timeout when it has no deadline",
			in:   Returned{Result: &operators.Result{Deferral: &operators.Deferral{Kind: "pod", Method: "resume"}}, Task: task, TryNumber: 1, Deadline: now.Add(time.Hour), Now: now},
			want: Outcome{State: runstate.Deferred, Trigger: trigger("pod", "resume", now.Add(time.Hour))}},
		{name: "deferral keeps the earlier of its deadline and execution_timeout (its own)",
			in:   Returned{Result: &operators.Result{Deferral: &operators.Deferral{Kind: "time", Method: "done", Deadline: now.Add(time.Minute)}}, Task: task, TryNumber: 1, Deadline: now.Add(time.Hour), Now: now},
			want: Outcome{State: runstate.Deferred, Trigger: trigger("time", "done", now.Add(time.Minute))}},
		{name: "deferral keeps the earlier of its deadline and execution_timeout (the timeout)",
			in:   Returned{Result: &operators.Result{Deferral: &operators.Deferral{Kind: "time", Method: "done", Deadline: now.Add(2 * time.Hour)}}, Task: task, TryNumber: 1, Deadline: now.Add(time.Hour), Now: now},
			want: Outcome{State: runstate.Deferred, Trigger: trigger("time", "done", now.Add(time.Hour))}},
		{name: "a template error fails at once although retries are left",
			in:      Returned{Err: fmt.Errorf("task t: option bash_command: %w", &templating.RenderError{Msg: `undefined: "params.tabel"`}), Task: task, TryNumber: 1, MaxTries: 3, Now: now},
			want:    Outcome{State: runstate.Failed},
			wantErr: "not retried: the template gives the same error on every try"},
		{name: "error with retries left: up for retry after retry_delay",
			in:   Returned{Err: exitErr, Task: task, TryNumber: 2, MaxTries: 2, Now: now},
			want: Outcome{State: runstate.UpForRetry, Error: exitErr.Error(), RetryAt: now.Add(time.Minute)}},
		{name: "error on the last try fails",
			in:   Returned{Err: exitErr, Task: task, TryNumber: 3, MaxTries: 2, Now: now},
			want: Outcome{State: runstate.Failed, Error: exitErr.Error()}},
		{name: "error before the task was known fails without retries",
			in:   Returned{Err: errors.New("load DAG version"), TryNumber: 1, MaxTries: 5, Now: now},
			want: Outcome{State: runstate.Failed, Error: "load DAG version"}},
		{name: "the context's cause is added to an error that does not say it",
			in:   Returned{Err: errors.New("pod stopped"), Cause: timeout, Task: task, TryNumber: 1, Now: now},
			want: Outcome{State: runstate.Failed, Error: "pod stopped (execution_timeout 5s exceeded)"}},
		{name: "a cause the error wraps is not repeated",
			in:   Returned{Err: fmt.Errorf("bash command stopped: %w", timeout), Cause: timeout, Task: task, TryNumber: 1, Now: now},
			want: Outcome{State: runstate.Failed, Error: "bash command stopped: execution_timeout 5s exceeded"}},
		{name: "a shutdown is retried at once whatever the retries",
			in:   Returned{Err: fmt.Errorf("bash command stopped: %w", ErrShutdown), Cause: ErrShutdown, Task: task, TryNumber: 4, MaxTries: 0, Now: now},
			want: Outcome{State: runstate.UpForRetry, Error: "bash command stopped: scheduler shutting down", RetryAt: now}},
		{name: "a shutdown is retried when the operator returns only its context's error",
			in:   Returned{Err: context.Canceled, Cause: ErrShutdown, Task: task, TryNumber: 4, MaxTries: 0, Now: now},
			want: Outcome{State: runstate.UpForRetry, Error: "context canceled (scheduler shutting down)", RetryAt: now}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.in)
			if tc.wantErr != "" {
				if !strings.Contains(got.Error, tc.wantErr) {
					t.Errorf("error %q; want it to mention %q", got.Error, tc.wantErr)
				}
				got.Error = ""
			}
			if g, w := fmt.Sprintf("%+v", describe(got)), fmt.Sprintf("%+v", describe(tc.want)); g != w {
				t.Errorf("Decide =\n  %s\nwant\n  %s", g, w)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		task dag.Task
		try  int
		want time.Duration
	}{
		{"fixed", dag.Task{RetryDelay: time.Minute}, 3, time.Minute},
		{"exponential, first try", dag.Task{RetryDelay: time.Minute, RetryExponentialBackoff: true}, 1, time.Minute},
		{"exponential, third try", dag.Task{RetryDelay: time.Minute, RetryExponentialBackoff: true}, 3, 4 * time.Minute},
		{"exponential, capped", dag.Task{RetryDelay: time.Minute, RetryExponentialBackoff: true, MaxRetryDelay: 3 * time.Minute}, 3, 3 * time.Minute},
		{"exponential overflow is capped", dag.Task{RetryDelay: time.Hour, RetryExponentialBackoff: true, MaxRetryDelay: 24 * time.Hour}, 200, 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetryDelay(&tc.task, tc.try); got != tc.want {
				t.Errorf("RetryDelay = %s; want %s", got, tc.want)
			}
		})
	}
}

func trigger(kind, method string, deadline time.Time) *store.NewTrigger {
	return &store.NewTrigger{Kind: kind, Method: method, Deadline: deadline}
}

// describe is an outcome in comparable form: XComs as text, the trigger
// by value.
func describe(o Outcome) any {
	xcom := map[string]string{}
	for k, v := range o.XCom {
		xcom[k] = string(v)
	}
	var trig store.NewTrigger
	if o.Trigger != nil {
		trig = *o.Trigger
	}
	return struct {
		State, Error, SkipReason string
		RetryAt                  time.Time
		Trigger                  store.NewTrigger
		HasTrigger               bool
		XCom                     map[string]string
	}{o.State, o.Error, o.SkipReason, o.RetryAt, trig, o.Trigger != nil, xcom}
}
