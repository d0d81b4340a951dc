package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/podflow/podflow/internal/executor"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
)

var errKilled = errors.New("task instance is no longer running here (cleared, or failed by another scheduler)")

// claimBatch bounds one claim transaction. A claim takes what is free up
// to it: with the default slots a claim is sized by the free slots and the
// queued tasks, not by this bound (a claim costs ~0.1 ms per row, so even a
// full batch holds the claim lock briefly).
const claimBatch = 1024

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
		s.gate.wait(ctx, stormHold)
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
		claimed, err = q.ClaimTasks(ctx, s.id, n, s.limits())
		return err
	})
	return claimed, err
}

// claimQueued claims, in q's transaction, up to queued of the task
// instances that transaction just queued, on slots it reserves (none while
// stopping, or while the start gate holds claims back). The caller starts
// the claimed tries after the commit (startClaimed), or gives the reserved
// slots back if the transaction fails.
func (s *Scheduler) claimQueued(ctx context.Context, q store.Q, queued int) (claimed []store.Claimed, reserved int, err error) {
	if queued == 0 || s.stopping.Load() || s.gate.held() {
		return nil, 0, nil
	}
	if reserved = s.slots.reserve(min(queued, claimBatch)); reserved == 0 {
		return nil, 0, nil
	}
	claimed, err = q.ClaimTasks(ctx, s.id, reserved, s.limits())
	return claimed, reserved, err
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
	s.releaseSlots(reserved - len(claimed))
}

// start runs a claimed try on a slot already reserved for it.
func (s *Scheduler) start(taskCtx context.Context, c store.Claimed) {
	ctx, cancel := context.WithCancelCause(taskCtx)
	log := newTaskLog(c.ID, c.TryNumber, s.cfg.Mask)
	s.mu.Lock()
	s.running[c.ID] = &runningTask{cancel: cancel, claimedAt: time.Now(), log: log}
	s.mu.Unlock()
	go func() {
		defer s.releaseSlots(1)
		f := s.execute(ctx, c, log)
		cancel(nil)
		s.outcomes <- f
		s.mu.Lock()
		delete(s.running, c.ID)
		s.mu.Unlock()
	}()
}

// execute runs one claimed try through the executor and returns its
// outcome, with the try's log ending in the outcome line.
func (s *Scheduler) execute(ctx context.Context, c store.Claimed, log *taskLog) *finished {
	out := store.Outcome{ID: c.ID, TryNumber: c.TryNumber, Owner: s.id,
		DagID: c.DagID, RunID: c.RunID, TaskID: c.TaskID, MapIndex: c.MapIndex}
	o := s.exec.Execute(ctx, executor.Try{
		DagID: c.DagID, TaskID: c.TaskID, Hash: c.Hash,
		Run: operators.TaskRun{RunID: c.RunID, TryNumber: c.TryNumber, LogicalDate: c.LogicalDate,
			DataIntervalStart: c.DataIntervalStart, DataIntervalEnd: c.DataIntervalEnd,
			XCom: s.store.XComPuller(c.DagID, c.RunID), Mapped: c.MapIndex >= 0, MapIndex: c.MapIndex},
		MappedArgs:        c.MappedArgs,
		RawConf:           c.Conf,
		MaxTries:          c.MaxTries,
		Started:           c.StartedAt,
		NextMethod:        c.NextMethod,
		NextEvent:         c.NextEvent,
		AssetEvents:       c.AssetEvents,
		Log:               log,
		ExternalNamespace: c.ExternalNS,
		ExternalName:      c.ExternalName,
		SetExternalID: func(ctx context.Context, ns, name string) error {
			return s.store.SetExternalID(ctx, c.ID, ns, name)
		},
	})
	out.State, out.Error, out.RetryAt, out.Trigger, out.XCom = o.State, o.Error, o.RetryAt, o.Trigger, o.XCom
	out.SkipTasks, out.AssetEvents = o.SkipTasks, o.AssetEvents
	if s.cfg.Mask != nil {
		out.Error = s.cfg.Mask(out.Error)
	}
	if !o.Progress {
		log.Printf("%s", outcomeLine(out, o.SkipReason))
	}
	lines, flushed := log.takeLast()
	if o.Quiet && !flushed && onlyOwnLines(lines) {
		lines = nil // an empty task's start and success: the state history has them
	}
	return &finished{outcome: out, runPK: c.RunPK, logs: lines}
}

// onlyOwnLines reports whether a log holds only podflow's own lines (no
// operator output, which is always kept).
func onlyOwnLines(lines []store.LogLine) bool {
	for _, l := range lines {
		if l.Source != "podflow" {
			return false
		}
	}
	return true
}

// completerBatch bounds one completion transaction; a batch is whatever
// waits (at most the outcomes channel's capacity), so under load one
// transaction records hundreds of outcomes instead of a statement per 128.
const completerBatch = 1024

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
			claimed, reserved, err = s.claimQueued(ctx, q, queued)
			return err
		})
		if err == nil {
			s.startClaimed(taskCtx, claimed, reserved)
			// Wake the claimer when tasks wait that this commit did not
			// claim, and when it queued nothing: a finished instance of a
			// throttled task (max_active_tis_per_dag(run)) makes room for
			// its queued siblings only now that its end is committed; the
			// wake at the slot's release came too early for them.
			if queued > len(claimed) || queued == 0 {
				signal(s.claimWake)
			}
			return
		}
		s.releaseSlots(reserved)
		s.log.Error("record finished tasks", "error", err, "attempt", attempt)
		if attempt == 5 {
			return // the zombie sweep recovers these task instances
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}
