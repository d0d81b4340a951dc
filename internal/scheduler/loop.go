package scheduler

import (
	"context"
	"fmt"
	"time"

	"github.com/podflow/podflow/internal/executor"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// sweepInterval is how often running runs are re-decided by the loop: the
// completer decides a run as its tasks finish, so this is a safety net (and
// the dagrun_timeout check).
const sweepInterval = 2 * time.Second

// loop runs the scheduling steps every LoopInterval, or at once when woken.
func (s *Scheduler) loop(ctx context.Context) {
	t := time.NewTicker(s.cfg.LoopInterval)
	defer t.Stop()
	nextDue := map[string]time.Time{} // dag hash → when its next scheduled run is due
	for {
		s.tick(ctx, nextDue)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.loopWake:
		}
	}
}

func (s *Scheduler) tick(ctx context.Context, nextDue map[string]time.Time) {
	now := time.Now()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"read pools", s.readPools},
		{"create scheduled runs", func(ctx context.Context) error { return s.createScheduledRuns(ctx, now, nextDue) }},
		{"start queued runs", s.startQueuedRuns},
		{"sweep running runs", func(ctx context.Context) error {
			if now.Sub(s.lastSweep) < sweepInterval {
				return nil
			}
			s.lastSweep = now
			return s.sweepRuns(ctx, now)
		}},
		{"queue retries", func(ctx context.Context) error { _, err := s.store.QueueDueRetries(ctx); return err }},
		{"queue resumed tasks", func(ctx context.Context) error { _, err := s.store.QueueResumed(ctx); return err }},
		{"fail zombies", s.failZombies},
	}
	for _, step := range steps {
		t0 := time.Now()
		err := step.run(ctx)
		if d := time.Since(t0); d > 50*time.Millisecond {
			s.log.Debug("slow scheduling step", "step", step.name, "took", d)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Error(step.name, "error", err)
		}
	}
}

// createScheduledRuns creates the runs whose data interval has ended, for
// every unpaused scheduled DAG. Several schedulers may create the same run:
// (dag_id, run_id) is unique and the insert does nothing the second time.
func (s *Scheduler) createScheduledRuns(ctx context.Context, now time.Time, nextDue map[string]time.Time) error {
	rows, err := s.store.Dags(ctx)
	if err != nil {
		return err
	}
	for _, row := range rows {
		if row.Hash == "" || row.Paused || row.Schedule == "" {
			continue
		}
		if due, ok := nextDue[row.Hash]; ok && now.Before(due) {
			continue
		}
		d, err := s.dags.get(ctx, s.store.Q, row.Hash)
		if err != nil {
			s.log.Error("load DAG version", "dag_id", row.DagID, "error", err)
			continue
		}
		last, err := s.store.LatestLogicalDate(ctx, d.ID, "scheduled")
		if err != nil {
			return err
		}
		var lastPtr *time.Time
		if !last.IsZero() {
			lastPtr = &last
		}
		for _, logical := range d.CatchupWindow(lastPtr, now) {
			if _, err := s.createRun(ctx, d, "scheduled", logical, nil); err != nil {
				return err
			}
		}
		if _, due, ok := d.NextDue(now); ok {
			nextDue[row.Hash] = due
		} else {
			nextDue[row.Hash] = now.Add(time.Hour)
		}
	}
	return nil
}

// startQueuedRuns starts queued runs within each DAG's max_active_runs,
// oldest logical date first, holding the DAG's row lock so two schedulers
// never start more than allowed.
func (s *Scheduler) startQueuedRuns(ctx context.Context) error {
	dagIDs, err := s.store.DagsWithQueuedRuns(ctx)
	if err != nil {
		return err
	}
	for _, dagID := range dagIDs {
		err := s.store.InTx(ctx, func(q store.Q) error {
			row, err := q.Dag(ctx, dagID)
			if err != nil {
				return err
			}
			if ok, err := q.LockDag(ctx, dagID, true); err != nil || !ok {
				return err
			}
			maxActive := 16
			if row.Hash != "" {
				if d, err := s.dags.get(ctx, q, row.Hash); err == nil {
					maxActive = d.MaxActiveRuns
				}
			}
			runs, err := q.RunsToStart(ctx, dagID, maxActive)
			if err != nil {
				return err
			}
			for _, run := range runs {
				if err := s.startRun(ctx, q, run); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("start runs of %s: %w", dagID, err)
		}
	}
	return nil
}

func (s *Scheduler) startRun(ctx context.Context, q store.Q, run store.Run) error {
	d, err := s.dags.get(ctx, q, run.Hash)
	if err != nil {
		return err
	}
	if ok, err := q.StartRun(ctx, run.PK); err != nil || !ok {
		return err
	}
	// Tasks ready from the start (no upstream) are created queued.
	ready := map[string]bool{}
	for _, id := range runstate.Decide(d, nil).Queue {
		ready[id] = true
	}
	specs := make([]store.TaskSpec, len(d.Tasks))
	for i, t := range d.Tasks {
		// A mapped task waits as a placeholder until evaluateRun expands it.
		specs[i] = store.TaskSpec{TaskID: t.ID, MaxTries: t.Retries, Pool: t.Pool, Priority: t.PriorityWeight,
			Queued: ready[t.ID] && !t.Mapped(), MaxActivePerDag: t.MaxActiveTIsPerDag, MaxActivePerRun: t.MaxActiveTIsPerDagrun}
	}
	if err := q.InsertTaskInstances(ctx, run, specs); err != nil {
		return err
	}
	run.State = runstate.RunRunning
	_, err = s.evaluateRun(ctx, q, run)
	return err
}

// sweepRuns re-decides every running run (a safety net behind the
// completer) and fails runs past their dagrun_timeout.
func (s *Scheduler) sweepRuns(ctx context.Context, now time.Time) error {
	runs, err := s.store.RunningRuns(ctx)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if !s.runNeedsSweep(ctx, r, now) {
			continue
		}
		err := s.store.InTx(ctx, func(q store.Q) error {
			run, ok, err := q.LockRun(ctx, r.PK, true)
			if err != nil || !ok || run.State != runstate.RunRunning {
				return err
			}
			d, err := s.dags.get(ctx, q, run.Hash)
			if err != nil {
				return err
			}
			if d.DagrunTimeout > 0 && run.StartedAt != nil && now.Sub(*run.StartedAt) > d.DagrunTimeout {
				return s.timeOutRun(ctx, q, run, d.DagrunTimeout)
			}
			_, err = s.evaluateRun(ctx, q, run)
			return err
		})
		if err != nil {
			s.log.Error("sweep run", "dag_id", r.DagID, "run_id", r.RunID, "error", err)
		}
	}
	return nil
}

// runNeedsSweep decides without locking whether a run has anything to do,
// so the sweep writes (and locks) only runs that need it.
func (s *Scheduler) runNeedsSweep(ctx context.Context, run store.Run, now time.Time) bool {
	d, err := s.dags.get(ctx, s.store.Q, run.Hash)
	if err != nil {
		return true // the locked pass reports the error
	}
	if d.DagrunTimeout > 0 && run.StartedAt != nil && now.Sub(*run.StartedAt) > d.DagrunTimeout {
		return true
	}
	states, err := s.store.TaskStates(ctx, run.PK)
	if err != nil {
		return true
	}
	return !runstate.Decide(d, states).Empty()
}

// timeOutRun fails a run past dagrun_timeout: running tasks fail (their
// workers notice and stop them), unfinished ones are skipped.
func (s *Scheduler) timeOutRun(ctx context.Context, q store.Q, run store.Run, timeout time.Duration) error {
	res, err := q.FailForRunTimeout(ctx, run.PK)
	if err != nil || !res.Finished {
		return err
	}
	s.log.Warn("run timed out", "dag_id", run.DagID, "run_id", run.RunID, "dagrun_timeout", timeout,
		"failed_tasks", res.Failed, "skipped_tasks", res.Skipped)
	return nil
}

// failZombies fails (or retries) running task instances whose scheduler
// stopped heartbeating.
func (s *Scheduler) failZombies(ctx context.Context) error {
	zombies, err := s.store.Zombies(ctx, s.cfg.ZombieThreshold)
	if err != nil {
		return err
	}
	for _, z := range zombies {
		err := s.store.InTx(ctx, func(q store.Q) error {
			run, ok, err := q.LockRun(ctx, z.RunPK, false)
			if err != nil || !ok {
				return err
			}
			ti, err := q.TaskInstanceByID(ctx, z.ID)
			if err != nil {
				return err
			}
			out := store.Outcome{ID: z.ID, TryNumber: z.TryNumber, Owner: z.Owner, State: runstate.Failed,
				Error: fmt.Sprintf("zombie: scheduler %s stopped heartbeating for over %s while running this task", z.Owner, s.cfg.ZombieThreshold)}
			if z.TryNumber <= z.MaxTries {
				out.State = runstate.UpForRetry
				out.RetryAt = time.Now()
				if d, err := s.dags.get(ctx, q, run.Hash); err == nil {
					if t := d.Task(ti.TaskID); t != nil {
						out.RetryAt = time.Now().Add(executor.RetryDelay(t, z.TryNumber))
					}
				}
			}
			ok, err = q.FinishTask(ctx, out)
			if err != nil || !ok {
				return err
			}
			if err := q.AppendLogs(ctx, []store.LogLine{{TIID: z.ID, TryNumber: z.TryNumber, At: time.Now(), Source: "podflow", Line: out.Error}}); err != nil {
				return err
			}
			s.log.Warn("zombie task", "dag_id", run.DagID, "run_id", run.RunID, "task_id", ti.TaskID, "owner", z.Owner, "now", out.State)
			if run.State == runstate.RunRunning {
				_, err = s.evaluateRun(ctx, q, run)
			}
			return err
		})
		if err != nil {
			s.log.Error("fail zombie", "task_instance", z.ID, "error", err)
		}
	}
	return nil
}
