package scheduler_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

// intervals reads "task start end" lines (nanoseconds) written by tasks.
func intervals(t *testing.T, file string) map[string][2]int64 {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		a, _ := strconv.ParseInt(f[1], 10, 64)
		b, _ := strconv.ParseInt(f[2], 10, 64)
		out[f[0]] = [2]int64{a, b}
	}
	return out
}

// maxOverlap is the most intervals running at one instant.
func maxOverlap(iv map[string][2]int64) int {
	type ev struct {
		at    int64
		delta int
	}
	var evs []ev
	for _, x := range iv {
		evs = append(evs, ev{x[0], 1}, ev{x[1], -1})
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].at == evs[j].at {
			return evs[i].delta < evs[j].delta
		}
		return evs[i].at < evs[j].at
	})
	cur, best := 0, 0
	for _, e := range evs {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}

func timedTask(id, file, extra string) string {
	return "  - {task_id: " + id + ", operator: bash, " + extra + "bash_command: 's=$(date +%s%N); sleep 0.4; echo " + id + " $s $(date +%s%N) >> " + file + "'}\n"
}

func TestPoolSlotsAndMaxActiveTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	poolFile := filepath.Join(t.TempDir(), "pool")
	dagFile := filepath.Join(t.TempDir(), "dag")
	src := "dag_id: limited\nmax_active_tasks: 2\ntasks:\n"
	for _, id := range []string{"a", "b", "c", "d"} {
		src += timedTask(id, dagFile, "")
	}
	b.DAG("limited", src)
	src = "dag_id: pooled\ntasks:\n"
	for _, id := range []string{"p1", "p2", "p3"} {
		src += timedTask(id, poolFile, "pool: single, ")
	}
	b.DAG("pooled", src)
	b.Scheduler(func(c *scheduler.Config) {
		c.Limits = store.Limits{Pools: map[string]int{"single": 1}, DefaultSlot: 128}
	})
	r1, r2 := b.Trigger("limited", ""), b.Trigger("pooled", "")
	if b.WaitRun("limited", r1, time.Minute) != runstate.RunSuccess || b.WaitRun("pooled", r2, time.Minute) != runstate.RunSuccess {
		t.Fatal("runs failed")
	}
	if n := maxOverlap(intervals(t, dagFile)); n != 2 {
		t.Errorf("max_active_tasks 2: %d tasks overlapped", n)
	}
	if n := maxOverlap(intervals(t, poolFile)); n != 1 {
		t.Errorf("pool with 1 slot: %d tasks overlapped", n)
	}
}

func TestPriorityWeightOrdersQueuedTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	file := filepath.Join(t.TempDir(), "order")
	src := "dag_id: prio\ntasks:\n"
	for i, w := range []int{1, 5, 3, 10, 2} {
		id := "t" + strconv.Itoa(i)
		src += "  - {task_id: " + id + ", operator: bash, priority_weight: " + strconv.Itoa(w) + ", bash_command: 'echo " + strconv.Itoa(w) + " >> " + file + "'}\n"
	}
	b.DAG("prio", src)
	runID := b.Trigger("prio", "")
	b.Scheduler(func(c *scheduler.Config) { c.Workers = 1 })
	if b.WaitRun("prio", runID, time.Minute) != runstate.RunSuccess {
		t.Fatal("run failed")
	}
	data, _ := os.ReadFile(file)
	if got := strings.Fields(string(data)); strings.Join(got, ",") != "10,5,3,2,1" {
		t.Errorf("ran in order %v, want by priority_weight 10,5,3,2,1", got)
	}
}

// With one worker slot, each queued task starts as soon as the slot is
// free: the claimer is woken when the finished task's end is recorded, or
// when the slot is released if that comes later (a lost wake-up would leave
// each task to the claimer's one-second poll).
func TestOneSlotRunsQueuedTasksBackToBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := "dag_id: one_slot\ntasks:\n"
	for i := range 8 {
		src += "  - {task_id: t" + strconv.Itoa(i) + ", operator: bash, bash_command: 'true'}\n"
	}
	b.DAG("one_slot", src)
	b.Scheduler(func(c *scheduler.Config) { c.Workers = 1 })
	runID := b.Trigger("one_slot", "")
	start := time.Now()
	if b.WaitRun("one_slot", runID, time.Minute) != runstate.RunSuccess {
		t.Fatal("run failed")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("8 tasks on one slot took %s: a task waited for the claimer's poll instead of the slot's release", took.Round(time.Millisecond))
	}
}

func TestDagrunTimeoutFailsRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("long", "dag_id: long\ndagrun_timeout: 1s\ntasks:\n  - {task_id: sleepy, operator: bash, bash_command: 'sleep 30'}\n  - {task_id: after, operator: empty, upstream: [sleepy]}\n")
	// A 5 s heartbeat (the default's): only the run's own timeout can stop
	// sleepy within the 2 s asserted below.
	s := b.Scheduler(func(c *scheduler.Config) { c.HeartbeatInterval = 5 * time.Second })
	runID := b.Trigger("long", "")
	start := time.Now()
	if got := b.WaitRun("long", runID, time.Minute); got != runstate.RunFailed {
		t.Fatalf("run %s, want failed", got)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("dagrun_timeout of 1s took %s", took)
	}
	// The failed task's process is stopped at once, not at the scheduler's
	// next heartbeat.
	failedAt := time.Now()
	b.WaitFor("sleepy's process stops", 30*time.Second, func() bool { return s.Running() == 0 })
	if took := time.Since(failedAt); took > 2*time.Second {
		t.Errorf("sleepy ran on for %s after its run timed out", took.Round(time.Millisecond))
	}
	states := b.States("long", runID)
	if states["sleepy"] != runstate.Failed || states["after"] != runstate.Skipped {
		t.Errorf("states %v, want sleepy failed and after skipped", states)
	}
}

// A clean shutdown (SIGTERM → context cancelled) leaves no task running: a
// task that outlives the grace period is stopped and put up for retry.
func TestCleanShutdownLeavesNothingRunning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("stuck", "dag_id: stuck\ntasks:\n  - {task_id: long, operator: bash, bash_command: 'sleep 60'}\n")
	s := scheduler.New(b.Store, b.Ops, scheduler.Config{DagsFolder: b.Dir, Workers: 2, ShutdownGrace: 500 * time.Millisecond,
		SyncInterval: 50 * time.Millisecond, LoopInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	runID := b.Trigger("stuck", "")
	b.WaitFor("long runs", 30*time.Second, func() bool { return b.tryState("stuck", runID, "long") == runstate.Running })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("scheduler did not stop")
	}
	ti := b.TI("stuck", runID, "long")
	if ti.State != runstate.UpForRetry || !strings.Contains(ti.Error, "shutting down") {
		t.Errorf("after shutdown: state %s error %q, want up_for_retry because of the shutdown", ti.State, ti.Error)
	}
	if _, ok, _ := b.Store.HeartbeatAge(b.Ctx, s.ID()); ok {
		t.Error("heartbeat left behind")
	}
}

func TestPausedDagCreatesNoScheduledRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour)
	b.DAG("paused", "dag_id: paused\nschedule: '@hourly'\ncatchup: true\nstart_date: "+start.Format(time.RFC3339)+"\ntasks:\n  - {task_id: a, operator: empty}\n")
	// Register it paused before any scheduler sees it.
	b.Trigger("paused", "")
	if err := b.Store.SetPaused(b.Ctx, "paused", true); err != nil {
		t.Fatal(err)
	}
	b.Scheduler(nil)
	time.Sleep(1500 * time.Millisecond)
	runs, err := b.Store.Runs(b.Ctx, "paused", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].RunType != "manual" {
		t.Fatalf("paused DAG has runs %+v, want only the manual one", runs)
	}
	if runs[0].State != runstate.RunSuccess && runs[0].State != runstate.RunRunning {
		t.Errorf("a manual run of a paused DAG is %s; triggering works while paused", runs[0].State)
	}
	if err := b.Store.SetPaused(b.Ctx, "paused", false); err != nil {
		t.Fatal(err)
	}
	b.WaitFor("after unpause, 1 manual + 3 scheduled runs", 20*time.Second, func() bool {
		runs, _ = b.Store.Runs(b.Ctx, "paused", 10)
		return len(runs) == 4
	})
}

// tryState is a task instance's state, "" while it does not exist yet.
func (b *testBundle) tryState(dagID, runID, taskID string) string {
	run, err := b.Store.Run(b.Ctx, dagID, runID)
	if err != nil {
		return ""
	}
	ti, err := b.Store.TaskInstance(b.Ctx, run.PK, taskID)
	if err != nil {
		return ""
	}
	return ti.State
}
