package scheduler

import (
	"context"
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

var (
	errShutdown = errors.New("scheduler shutting down")
	errKilled   = errors.New("task instance is no longer running here (cleared, or failed by another scheduler)")
)

// claimBatch bounds one claim transaction.
const claimBatch = 128

type runningTask struct {
	cancel    context.CancelCauseFunc
	claimedAt time.Time
	log       *taskLog
}

// finished is a try's outcome on its way to the completer.
type finished struct {
	outcome store.Outcome
	runPK   int64
	logs    []store.LogLine
}

// claimer claims queued task instances while slots are free: when woken by
// a notification, after a task finishes, and every second as a fallback.
func (s *Scheduler) claimer(ctx, taskCtx context.Context) {
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		if n := s.slots.reserve(claimBatch); n > 0 {
			claimed, err := s.claim(ctx, n)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("claim tasks", "error", err)
			}
			s.startClaimed(taskCtx, claimed, n)
			if len(claimed) == n && ctx.Err() == nil {
				continue // there may be more
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.claimWake:
		case <-poll.C:
		}
	}
}

func (s *Scheduler) claim(ctx context.Context, n int) ([]store.Claimed, error) {
	var claimed []store.Claimed
	err := s.store.InTx(ctx, func(q store.Q) error {
		var err error
		claimed, err = q.ClaimTasks(ctx, s.id, n, s.cfg.Limits)
		return err
	})
	return claimed, err
}

// startClaimed starts claimed tries on the reserved slots and gives back
// the slots no task came for.
func (s *Scheduler) startClaimed(taskCtx context.Context, claimed []store.Claimed, reserved int) {
	for _, c := range claimed {
		if s.cfg.Metrics != nil && c.QueuedAt != nil {
			s.cfg.Metrics.SchedulingLatency.Observe(time.Since(*c.QueuedAt).Seconds())
		}
		s.start(taskCtx, c)
	}
	s.slots.release(reserved - len(claimed))
}

// start runs a claimed try on a slot already reserved for it.
func (s *Scheduler) start(taskCtx context.Context, c store.Claimed) {
	ctx, cancel := context.WithCancelCause(taskCtx)
	log := newTaskLog(c.ID, c.TryNumber)
	s.mu.Lock()
	s.running[c.ID] = &runningTask{cancel: cancel, claimedAt: time.Now(), log: log}
	s.mu.Unlock()
	go func() {
		defer func() {
			s.slots.release(1)
			signal(s.claimWake) // a slot is free: more may be queued
		}()
		f := s.execute(ctx, c, log)
		cancel(nil)
		s.outcomes <- f
		s.mu.Lock()
		delete(s.running, c.ID)
		s.mu.Unlock()
	}()
}

// execute runs one claimed try and returns its outcome. It never panics
// out: an operator's panic fails the try.
func (s *Scheduler) execute(ctx context.Context, c store.Claimed, log *taskLog) (f *finished) {
	out := store.Outcome{ID: c.ID, TryNumber: c.TryNumber, Owner: s.id,
		DagID: c.DagID, RunID: c.RunID, TaskID: c.TaskID, MapIndex: c.MapIndex}
	f = &finished{runPK: c.RunPK}
	skipReason := ""
	defer func() {
		if r := recover(); r != nil {
			f.outcome = s.failure(out, c, nil, fmt.Errorf("operator panicked: %v", r))
		}
		log.Printf("%s", outcomeLine(f.outcome, skipReason))
		f.logs = log.take()
	}()
	if c.NextMethod != "" {
		log.Printf("resuming %s.%s (try %d) after deferral: %s", c.DagID, c.TaskID, c.TryNumber, string(c.NextEvent))
	} else {
		log.Printf("starting %s.%s run %s (try %d of %d)", c.DagID, c.TaskID, c.RunID, c.TryNumber, c.MaxTries+1)
	}
	d, err := s.dags.get(ctx, s.store.Q, c.Hash)
	if err != nil {
		f.outcome = s.failure(out, c, nil, err)
		return f
	}
	task := d.Task(c.TaskID)
	if task == nil {
		f.outcome = s.failure(out, c, nil, fmt.Errorf("task %s is not in DAG %s version %s", c.TaskID, c.DagID, c.Hash[:12]))
		return f
	}
	op, ok := s.ops.Lookup(task.Operator)
	if !ok {
		f.outcome = s.failure(out, c, task, fmt.Errorf("unknown operator %q", task.Operator))
		return f
	}
	tc, err := s.taskContext(ctx, d, task, c, log)
	if err != nil {
		f.outcome = s.failure(out, c, task, err)
		return f
	}
	if task.ExecutionTimeout > 0 {
		started := time.Now()
		if c.StartedAt != nil {
			started = *c.StartedAt // across a deferral, the timeout counts from the try's start
		}
		tc.Deadline = started.Add(task.ExecutionTimeout)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, tc.Deadline,
			fmt.Errorf("execution_timeout %s exceeded", task.ExecutionTimeout))
		defer cancel()
	}

	var res *operators.Result
	if c.NextMethod != "" {
		r, ok := op.(operators.Resumer)
		if !ok {
			err = fmt.Errorf("operator %s cannot resume after a deferral", task.Operator)
		} else {
			res, err = r.Resume(ctx, tc, c.NextMethod, resumeEvent(c.NextEvent))
		}
	} else {
		res, err = op.Execute(ctx, tc)
	}
	switch {
	case err != nil && operators.IsSkip(err):
		skipReason = skipReasonOf(err)
		out.State = runstate.Skipped
	case err != nil:
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		f.outcome = s.failure(out, c, task, err)
		return f
	case res != nil && res.Deferral != nil:
		out.State = runstate.Deferred
		deadline := res.Deferral.Deadline
		if !tc.Deadline.IsZero() && (deadline.IsZero() || tc.Deadline.Before(deadline)) {
			deadline = tc.Deadline
		}
		out.Trigger = &store.NewTrigger{Kind: res.Deferral.Kind, Args: res.Deferral.Args, Deadline: deadline, Method: res.Deferral.Method}
	case res != nil && res.Skipped:
		out.State = runstate.Skipped
	default:
		out.State = runstate.Success
		if res != nil && len(res.XCom) > 0 {
			out.XCom = map[string]json.RawMessage{}
			for k, v := range res.XCom {
				raw, err := xcomstore.Encode(k, v, xcomstore.DefaultMaxSize)
				if err != nil {
					f.outcome = s.failure(out, c, task, err)
					return f
				}
				out.XCom[k] = raw
			}
		}
	}
	f.outcome = out
	return f
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

// failure turns an error into failed or up_for_retry. A try stopped by a
// shutdown is retried at once whatever its retries: it did not fail.
func (s *Scheduler) failure(out store.Outcome, c store.Claimed, task *dag.Task, err error) store.Outcome {
	out.Error = err.Error()
	switch {
	case errors.Is(err, errShutdown):
		out.State = runstate.UpForRetry
		out.RetryAt = time.Now()
	case c.TryNumber <= c.MaxTries && task != nil:
		out.State = runstate.UpForRetry
		out.RetryAt = time.Now().Add(retryDelay(task, c.TryNumber))
	default:
		out.State = runstate.Failed
	}
	return out
}

// retryDelay is retry_delay, doubled per try with retry_exponential_backoff,
// capped by max_retry_delay.
func retryDelay(t *dag.Task, try int) time.Duration {
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

func (s *Scheduler) taskContext(ctx context.Context, d *dag.DAG, t *dag.Task, c store.Claimed, log *taskLog) (*operators.TaskContext, error) {
	conf := map[string]any{}
	if len(c.Conf) > 0 {
		v, err := xcomstore.Decode(c.Conf)
		if err != nil {
			return nil, fmt.Errorf("run conf: %w", err)
		}
		if m, ok := v.(map[string]any); ok {
			conf = m
		}
	}
	params := d.RunParams(conf)
	tc := &operators.TaskContext{
		DAG:       d,
		Task:      t,
		RunID:     c.RunID,
		TryNumber: c.TryNumber,
		Log:       log,
		Template: &templating.Context{
			DagID: d.ID, TaskID: t.ID, RunID: c.RunID, TryNumber: c.TryNumber,
			LogicalDate: c.LogicalDate, DataIntervalStart: c.DataIntervalStart, DataIntervalEnd: c.DataIntervalEnd,
			Params: params, Conf: conf, XCom: s.store.XComPuller(c.DagID, c.RunID),
		},
		Connections:       s.cfg.Connections,
		ExternalNamespace: c.ExternalNS,
		ExternalName:      c.ExternalName,
		SetExternalID: func(ctx context.Context, ns, name string) error {
			return s.store.SetExternalID(ctx, c.ID, ns, name)
		},
	}
	return tc, nil
}

// completerBatch bounds one completion transaction.
const completerBatch = 128

// completer applies finished tries in batches: one transaction records every
// outcome of the batch and decides each affected run, then wakes the claimer.
// It drains what is pending and never waits to fill a batch, so a lone
// task's downstream is queued at once.
func (s *Scheduler) completer(ctx, taskCtx context.Context) {
	for {
		var batch []*finished
		select {
		case f := <-s.outcomes:
			batch = append(batch, f)
		case <-ctx.Done():
			// Drain what is left: no finished task is lost on shutdown.
			for {
				select {
				case f := <-s.outcomes:
					s.complete(context.WithoutCancel(ctx), taskCtx, []*finished{f})
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < completerBatch {
			select {
			case f := <-s.outcomes:
				batch = append(batch, f)
			default:
				break drain
			}
		}
		s.complete(context.WithoutCancel(ctx), taskCtx, batch)
	}
}

func (s *Scheduler) complete(ctx context.Context, taskCtx context.Context, batch []*finished) {
	for attempt := 1; ; attempt++ {
		queued, reserved := 0, 0
		var claimed []store.Claimed
		err := s.store.InTx(ctx, func(q store.Q) error {
			queued = 0
			var logs []store.LogLine
			runs := map[int64]bool{}
			outs := make([]store.Outcome, len(batch))
			for i, f := range batch {
				logs = append(logs, f.logs...)
				outs[i] = f.outcome
			}
			applied, err := q.FinishTasks(ctx, outs)
			if err != nil {
				return err
			}
			for i, f := range batch {
				if applied[i] {
					runs[f.runPK] = true
					if s.cfg.Metrics != nil {
						s.cfg.Metrics.TasksFinished.WithLabelValues(f.outcome.State).Inc()
					}
				}
			}
			if err := q.AppendLogs(ctx, logs); err != nil {
				return err
			}
			for _, pk := range sortedKeys(runs) {
				run, ok, err := q.LockRun(ctx, pk, false)
				if err != nil {
					return err
				}
				if !ok || run.State != runstate.RunRunning {
					continue
				}
				n, err := s.evaluateRun(ctx, q, run)
				if err != nil {
					return err
				}
				queued += n
			}
			// Fast path: claim the tasks just queued in this same
			// transaction, so a downstream task starts without another
			// round trip or wake-up.
			if queued > 0 && !s.stopping.Load() {
				if reserved = s.slots.reserve(min(queued, claimBatch)); reserved > 0 {
					var err error
					claimed, err = q.ClaimTasks(ctx, s.id, reserved, s.cfg.Limits)
					return err
				}
			}
			return nil
		})
		if err == nil {
			s.startClaimed(taskCtx, claimed, reserved)
			if queued > len(claimed) {
				signal(s.claimWake)
			}
			return
		}
		s.slots.release(reserved)
		s.log.Error("record finished tasks", "error", err, "attempt", attempt)
		if attempt == 5 {
			return // the zombie sweep recovers these task instances
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}
