package scheduler_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

// runChildScheduler is one scheduler process, so tests can run several and
// kill -9 one.
func runChildScheduler(c *flowtest.Child) error {
	workers, err := strconv.Atoi(c.Env("WORKERS"))
	if err != nil {
		return err
	}
	zombie, err := time.ParseDuration(c.Env("ZOMBIE_THRESHOLD"))
	if err != nil {
		return err
	}
	s := scheduler.New(c.Store, operators.NewRegistry(bash.New(), empty.New()), scheduler.Config{
		DagsFolder: c.Dir, Workers: workers, ZombieThreshold: zombie,
		LoopInterval: 200 * time.Millisecond, SyncInterval: 200 * time.Millisecond, Logger: c.Logger,
	})
	c.Ready(s.ID())
	return s.Run(c.Ctx)
}

// startSchedulerProcess starts one scheduler process and waits until it runs.
func (b *testBundle) startSchedulerProcess(workers int, zombie time.Duration) *flowtest.Process {
	b.T.Helper()
	return b.StartChild("scheduler", "WORKERS="+strconv.Itoa(workers), "ZOMBIE_THRESHOLD="+zombie.String())
}

// appendDAG is 10 tasks (a 4-level fan-out/fan-in) that each append their
// task id and run id to a file.
func appendDAG(file string, sleep string) string {
	var sb strings.Builder
	sb.WriteString("dag_id: append\nmax_active_runs: 1000\nmax_active_tasks: 1000\ndefault_args: {retries: 3, retry_delay: 0}\ntasks:\n")
	ids := []string{"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"}
	up := map[string]string{"t1": "[t0]", "t2": "[t0]", "t3": "[t0]", "t4": "[t1, t2]", "t5": "[t2, t3]",
		"t6": "[t4]", "t7": "[t5]", "t8": "[t6, t7]", "t9": "[t8]"}
	for _, id := range ids {
		fmt.Fprintf(&sb, "  - task_id: %s\n    operator: bash\n    do_xcom_push: false\n    bash_command: '%secho %s {{ run_id }} >> %s'\n", id, sleep, id, file)
		if u, ok := up[id]; ok {
			fmt.Fprintf(&sb, "    upstream: %s\n", u)
		}
	}
	return sb.String()
}

func (b *testBundle) triggerMany(dagID string, n int) []string {
	runIDs := make([]string, n)
	for i := range runIDs {
		runIDs[i] = b.Trigger(dagID, "")
	}
	return runIDs
}

func countLines(t *testing.T, file string) map[string]int {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		seen[l]++
	}
	return seen
}

// Three scheduler processes on one database: 100 runs of 10 tasks, every
// task runs exactly once. (1,000 tasks keep the three processes' 24 worker
// slots claiming against each other for the whole test; it once had 300
// runs, which asserted nothing more and took three times as long.)
func TestThreeSchedulersRunEveryTaskOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three scheduler processes; runs in `make test`")
	}
	b := setup(t)
	file := filepath.Join(t.TempDir(), "out")
	b.DAG("append", appendDAG(file, ""))
	for i := 0; i < 3; i++ {
		b.startSchedulerProcess(8, 30*time.Second)
	}
	runIDs := b.triggerMany("append", 100)
	counts := b.WaitRuns("append", runIDs, 5*time.Minute)
	if counts[runstate.RunSuccess] != 100 {
		t.Fatalf("run states %v, want 100 success", counts)
	}
	seen := countLines(t, file)
	if len(seen) != 1000 {
		t.Errorf("%d distinct task lines, want 1000", len(seen))
	}
	for line, n := range seen {
		if n != 1 {
			t.Errorf("%q ran %d times", line, n)
		}
	}
	// Work was shared: every scheduler ran some tasks.
	rows, err := b.Store.Pool.Query(b.Ctx, `SELECT count(DISTINCT owner_id) FROM task_instances`)
	if err != nil {
		t.Fatal(err)
	}
	var owners int
	for rows.Next() {
		_ = rows.Scan(&owners)
	}
	rows.Close()
	if owners != 3 {
		t.Errorf("tasks ran on %d schedulers, want 3", owners)
	}
}

// kill -9 one of three schedulers mid-run: every run still finishes, and the
// tasks it was running are retried after the zombie threshold.
func TestKilledSchedulerTasksAreRetried(t *testing.T) {
	if testing.Short() {
		t.Skip("starts scheduler processes; runs in `make test`")
	}
	b := setup(t)
	file := filepath.Join(t.TempDir(), "out")
	b.DAG("append", appendDAG(file, "sleep 0.3; "))
	victim := b.startSchedulerProcess(8, 2*time.Second)
	b.startSchedulerProcess(8, 2*time.Second)
	b.startSchedulerProcess(8, 2*time.Second)
	runIDs := b.triggerMany("append", 30)

	// Wait until the victim runs tasks, then kill it hard.
	var victimID string
	b.WaitFor("the victim runs a task", time.Minute, func() bool {
		rows, err := b.Store.Pool.Query(b.Ctx, `SELECT h.id FROM heartbeats h JOIN task_instances ti ON ti.owner_id = h.id
			WHERE ti.state = 'running' AND h.pid = $1 LIMIT 1`, victim.Cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			_ = rows.Scan(&victimID)
		}
		rows.Close()
		return victimID != ""
	})
	victim.Kill()
	killedAt := time.Now()

	counts := b.WaitRuns("append", runIDs, 3*time.Minute)
	if counts[runstate.RunSuccess] != 30 {
		t.Fatalf("run states %v, want 30 success", counts)
	}
	// Tasks the victim held were failed as zombies and retried elsewhere.
	rows, err := b.Store.Pool.Query(b.Ctx, `SELECT ti.id, ti.try_number, ti.owner_id FROM task_instances ti
		WHERE EXISTS (SELECT 1 FROM task_logs l WHERE l.ti_id = ti.id AND l.line LIKE 'zombie:%')`)
	if err != nil {
		t.Fatal(err)
	}
	retried := 0
	for rows.Next() {
		var id int64
		var try int
		var owner string
		if err := rows.Scan(&id, &try, &owner); err != nil {
			t.Fatal(err)
		}
		retried++
		if try < 2 || owner == victimID {
			t.Errorf("zombie task instance %d: try %d owner %s, want a retry on another scheduler", id, try, owner)
		}
	}
	rows.Close()
	if retried == 0 {
		t.Error("no task instance was retried as a zombie")
	}
	if took := time.Since(killedAt); took < 2*time.Second {
		t.Errorf("runs finished %s after the kill, before the zombie threshold", took)
	}
	// Every task still ran (at least once), all 300 lines are there.
	if seen := countLines(t, file); len(seen) != 300 {
		t.Errorf("%d distinct task lines, want 300", len(seen))
	}
}
