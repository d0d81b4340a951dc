package scheduler

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/executor"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// sweepInterval is how often running runs are re-decided by the loop: the
// completer decides a run as its tasks finish, so this is a safety net (and
// the dagrun_timeout check).
const sweepInterval = 2 * time.Second

// runsBatch bounds how many DAGs one run-starting transaction covers: big
// enough that a storm of thousands takes a few dozen transactions, small
// enough that each holds its locks briefly and a second scheduler can take
// the next batch meanwhile.
const runsBatch = 200

// loop runs the scheduler's duties, each in its own goroutine on its own
// cadence, so that a storm in one (thousands of runs to create and start at
// the top of the hour) never delays the others: retries, resumed tasks,
// zombies, sweeps and pools keep their rhythm, and the DAG folder has its
// own loop (syncLoop).
func (s *Scheduler) loop(ctx, taskCtx context.Context) {
	var wg sync.WaitGroup
	every := func(name string, interval time.Duration, step func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				s.step(ctx, name, step)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.runsLoop(ctx, taskCtx) }()
	every("read pools", s.cfg.LoopInterval, s.readPools)
	every("queue retries", s.cfg.LoopInterval, func(ctx context.Context) error { _, err := s.store.QueueDueRetries(ctx); return err })
	every("queue resumed tasks", s.cfg.LoopInterval, func(ctx context.Context) error { _, err := s.store.QueueResumed(ctx); return err })
	every("fail zombies", s.cfg.LoopInterval, s.failZombies)
	every("sweep running runs", sweepInterval, func(ctx context.Context) error { return s.sweepRuns(ctx, time.Now()) })
	every("prune the DAG cache", dagCachePruneInterval, s.pruneDagCache)
	wg.Wait()
}

// step runs one duty's step, logging its error and its slowness.
func (s *Scheduler) step(ctx context.Context, name string, run func(context.Context) error) {
	t0 := time.Now()
	err := run(ctx)
	if d := time.Since(t0); d > 50*time.Millisecond {
		s.log.Debug("slow scheduling step", "step", name, "took", d)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Error(name, "error", err)
	}
}

// runsLoop creates due runs and starts queued ones. It wakes at the next
// schedule boundary itself (a timer set to the earliest due time, not a
// free-running ticker that would add up to a LoopInterval to every
// scheduled run), when woken (a run was created, a DAG changed), and every
// LoopInterval as a fallback.
func (s *Scheduler) runsLoop(ctx, taskCtx context.Context) {
	nextDue := map[string]time.Time{} // dag hash → when its next scheduled run is due
	fallback := time.NewTicker(s.cfg.LoopInterval)
	defer fallback.Stop()
	boundary := time.NewTimer(time.Hour)
	defer boundary.Stop()
	startQueued := func(ctx context.Context) error { return s.startQueuedRuns(ctx, taskCtx) }
	woken := false
	for {
		if woken {
			// A run was created elsewhere (a trigger): it starts before
			// the scheduled and asset-triggered runs are looked for.
			s.step(ctx, "start queued runs", startQueued)
		}
		now := time.Now()
		s.step(ctx, "create scheduled runs", func(ctx context.Context) error { return s.createScheduledRuns(ctx, now, nextDue) })
		s.step(ctx, "create asset-triggered runs", s.createAssetRuns)
		s.step(ctx, "start queued runs", startQueued)
		// The DAGs due within warmLead are parsed now, so that a storm at
		// the boundary does not wait for thousands of parses; the loop
		// wakes warmLead before each boundary for it.
		s.dags.warm(dueBy(nextDue, time.Now().Add(warmLead)))
		wait := untilEarliest(nextDue, time.Now(), time.Hour)
		if wait > warmLead {
			wait -= warmLead
		}
		boundary.Reset(wait)
		woken = false
		select {
		case <-ctx.Done():
			return
		case <-fallback.C:
		case <-boundary.C:
		case <-s.loopWake:
			woken = true
		}
	}
}

// warmLead is how long before a boundary the DAGs due at it are parsed.
const warmLead = 3 * time.Second

// dueBy lists the DAG versions due by t.
func dueBy(due map[string]time.Time, t time.Time) []string {
	var out []string
	for h, at := range due {
		if !at.After(t) {
			out = append(out, h)
		}
	}
	return out
}

// untilEarliest is how long until the earliest due time (at most max, at
// least a millisecond).
func untilEarliest(due map[string]time.Time, now time.Time, max time.Duration) time.Duration {
	d := max
	for _, t := range due {
		if w := t.Sub(now); w < d {
			d = w
		}
	}
	return time.Duration(math.Max(float64(d), float64(time.Millisecond)))
}

// createScheduledRuns creates the runs whose data interval has ended, for
// every unpaused scheduled DAG: the due DAGs' latest runs in one query and
// all their new runs in one statement, however many are due at once.
// Several schedulers may create the same run: (dag_id, run_id) is unique
// and the insert does nothing the second time.
func (s *Scheduler) createScheduledRuns(ctx context.Context, now time.Time, nextDue map[string]time.Time) error {
	rows, err := s.store.ScheduledDags(ctx)
	if err != nil {
		return err
	}
	scheduled := make(map[string]bool, len(rows))
	for _, row := range rows {
		scheduled[row.Hash] = true
	}
	for h := range nextDue {
		if !scheduled[h] { // paused, edited or no longer scheduled
			delete(nextDue, h)
		}
	}
	var dueRows []store.DagRow
	var hashes []string
	for _, row := range rows {
		if at, ok := nextDue[row.Hash]; ok && now.Before(at) {
			continue
		}
		dueRows, hashes = append(dueRows, row), append(hashes, row.Hash)
	}
	s.dags.warm(hashes) // a storm's DAGs parsed in parallel
	var due []*dag.DAG
	for _, row := range dueRows {
		d, err := s.dags.get(ctx, s.store.Q, row.Hash)
		if err != nil {
			s.log.Error("load DAG version", "dag_id", row.DagID, "error", err)
			continue
		}
		due = append(due, d)
	}
	if len(due) == 0 {
		return nil
	}
	ids := make([]string, len(due))
	for i, d := range due {
		ids[i] = d.ID
	}
	latest, err := s.store.LatestLogicalDates(ctx, ids, "scheduled")
	if err != nil {
		return err
	}
	var runs []store.NewRun
	for _, d := range due {
		var lastPtr *time.Time
		if last, ok := latest[d.ID]; ok {
			lastPtr = &last
		}
		for _, logical := range d.CatchupWindow(lastPtr, now) {
			start, end := d.DataInterval(logical)
			runs = append(runs, store.NewRun{DagID: d.ID, RunID: dag.RunID("scheduled", logical), Hash: d.Hash,
				RunType: "scheduled", LogicalDate: logical, DataIntervalStart: start, DataIntervalEnd: end,
				MaxActiveTasks: d.MaxActiveTasks})
		}
	}
	for len(runs) > 0 {
		n := min(len(runs), 1000)
		created, err := s.store.CreateRuns(ctx, runs[:n])
		if err != nil {
			return err
		}
		s.logCreated(created)
		runs = runs[n:]
	}
	for _, d := range due {
		if _, at, ok := d.NextDue(now); ok {
			nextDue[d.Hash] = at
		} else {
			nextDue[d.Hash] = now.Add(time.Hour)
		}
	}
	return nil
}

// logCreated logs each created run, or a summary when a storm created many.
func (s *Scheduler) logCreated(created []store.NewRun) {
	if len(created) <= 20 {
		for _, r := range created {
			s.log.Info("run created", "dag_id", r.DagID, "run_id", r.RunID)
		}
		return
	}
	s.log.Info("runs created", "count", len(created), "first_dag_id", created[0].DagID, "first_run_id", created[0].RunID)
}

// startQueuedRuns starts queued runs within each DAG's max_active_runs, the
// latest runs first, in batches: one transaction per batch of DAGs locks
// the DAGs' rows no other scheduler holds (so two schedulers share a storm
// and never start more than allowed), starts their runs and creates all
// their task instances in one statement each. A pass of more than one
// batch holds task claiming back (startGate) until it ends; otherwise the
// transaction that starts runs also claims their ready tasks, as the
// completer does for the tasks it queues, so a triggered run's first task
// starts without another transaction or wake-up.
func (s *Scheduler) startQueuedRuns(ctx, taskCtx context.Context) error {
	dagIDs, err := s.store.DagsWithQueuedRunsByLateness(ctx)
	if err != nil {
		return err
	}
	if len(dagIDs) > runsBatch {
		// A storm: the CPU goes to starting runs before their tasks.
		release := s.gate.hold()
		defer func() { release(); signal(s.claimWake) }()
	}
	for len(dagIDs) > 0 && ctx.Err() == nil {
		n := min(len(dagIDs), runsBatch)
		var claimed []store.Claimed
		reserved := 0
		err := s.store.InTx(ctx, func(q store.Q) error {
			queued, err := s.startRunsOf(ctx, q, dagIDs[:n])
			if err != nil {
				return err
			}
			claimed, reserved, err = s.claimQueued(ctx, q, queued)
			return err
		})
		if err != nil {
			s.releaseSlots(reserved)
			return fmt.Errorf("start runs: %w", err)
		}
		s.startClaimed(taskCtx, claimed, reserved)
		dagIDs = dagIDs[n:]
	}
	return nil
}

// startRunsOf starts the runs that fit of the DAGs it can lock, in q's
// transaction, and returns how many task instances it queued.
func (s *Scheduler) startRunsOf(ctx context.Context, q store.Q, dagIDs []string) (queued int, err error) {
	locked, err := q.LockDags(ctx, dagIDs)
	if err != nil || len(locked) == 0 {
		return 0, err
	}
	rows, err := q.DagsByID(ctx, locked)
	if err != nil {
		return 0, err
	}
	maxActive := make(map[string]int, len(locked))
	for _, id := range locked {
		maxActive[id] = 16
	}
	for _, row := range rows {
		if row.Hash == "" {
			continue
		}
		if d, err := s.dags.get(ctx, q, row.Hash); err == nil {
			maxActive[row.DagID] = d.MaxActiveRuns
		}
	}
	runs, err := q.RunsToStartBatch(ctx, maxActive)
	if err != nil || len(runs) == 0 {
		return 0, err
	}
	pks := make([]int64, len(runs))
	for i, r := range runs {
		pks[i] = r.PK
	}
	started, err := q.StartRuns(ctx, pks)
	if err != nil {
		return 0, err
	}
	var batch []store.RunTasks
	var evaluate []store.Run
	for _, run := range runs {
		if !started[run.PK] {
			continue
		}
		d, err := s.dags.get(ctx, q, run.Hash)
		if err != nil {
			return 0, fmt.Errorf("run %s/%s: %w", run.DagID, run.RunID, err)
		}
		specs, states := initialTasks(d)
		for _, sp := range specs {
			if sp.Queued {
				queued++
			}
		}
		run.State = runstate.RunRunning
		batch = append(batch, store.RunTasks{Run: run, Specs: specs})
		// A run with more to decide than queueing its roots (no tasks at
		// all, say) is decided at once, as the completer would.
		if !runstate.Decide(d, states).Empty() {
			evaluate = append(evaluate, run)
		}
	}
	if err := q.InsertTaskInstancesBatch(ctx, batch); err != nil {
		return 0, err
	}
	for _, run := range evaluate {
		n, err := s.evaluateRun(ctx, q, run)
		if err != nil {
			return 0, err
		}
		queued += n
	}
	return queued, nil
}

// initialTasks are a new run's task instances (those ready from the start,
// with no upstream, created queued) and the states they start in.
func initialTasks(d *dag.DAG) ([]store.TaskSpec, map[string]string) {
	ready := map[string]bool{}
	for _, id := range runstate.Decide(d, nil).Queue {
		ready[id] = true
	}
	specs := make([]store.TaskSpec, len(d.Tasks))
	states := make(map[string]string, len(d.Tasks))
	for i, t := range d.Tasks {
		// A mapped task waits as a placeholder until evaluateRun expands it.
		queued := ready[t.ID] && !t.Mapped()
		specs[i] = store.TaskSpec{TaskID: t.ID, MaxTries: t.Retries, Pool: t.Pool, Priority: t.PriorityWeight,
			Queued: queued, MaxActivePerDag: t.MaxActiveTIsPerDag, MaxActivePerRun: t.MaxActiveTIsPerDagrun}
		states[t.ID] = runstate.None
		if queued {
			states[t.ID] = runstate.Queued
		}
	}
	return specs, states
}

// sweepRuns re-decides every running run (a safety net behind the
// completer) and fails runs past their dagrun_timeout.
func (s *Scheduler) sweepRuns(ctx context.Context, now time.Time) error {
	runs, err := s.store.RunningRuns(ctx)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if ctx.Err() != nil {
			return nil // stopping: the next scheduler's sweep picks up from here
		}
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
		if err != nil && ctx.Err() == nil {
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
