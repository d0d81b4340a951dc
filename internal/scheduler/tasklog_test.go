package scheduler_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
)

// TestLogEndsWithOutcome: each try's log ends with how it ended and why,
// so `podflow logs` tells what `podflow tasks` does.
func TestLogEndsWithOutcome(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("ends", `
dag_id: ends
tasks:
  - {task_id: ok, operator: bash, bash_command: 'echo fine'}
  - {task_id: skip, operator: bash, bash_command: 'exit 99'}
  - {task_id: boom, operator: bash, bash_command: 'echo about to fail; exit 3', retries: 1, retry_delay: 0}
`)
	b.Scheduler(nil)
	runID := b.Trigger("ends", "")
	if got := b.WaitRun("ends", runID, 30*time.Second); got != runstate.RunFailed {
		t.Fatalf("run %s, want failed; tasks %v", got, b.States("ends", runID))
	}
	for _, tc := range []struct {
		task string
		try  int
		want string // prefix of the try's last line
	}{
		{"ok", 1, "task succeeded"},
		{"skip", 1, "task skipped: bash command exited with code 99 (skip_on_exit_code)"},
		{"boom", 1, "task failed: "},
		{"boom", 2, "task failed: "},
	} {
		lines := b.TryLog("ends", runID, tc.task, tc.try)
		if len(lines) == 0 {
			t.Errorf("%s try %d: no log", tc.task, tc.try)
			continue
		}
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, tc.want) {
			t.Errorf("%s try %d: last log line %q, want it to start with %q\nlog:\n%s", tc.task, tc.try, last, tc.want, strings.Join(lines, "\n"))
		}
	}
	ti := b.TI("ends", runID, "boom")
	lines := b.TryLog("ends", runID, "boom", 2)
	if want := "task failed: " + ti.Error; lines[len(lines)-1] != want {
		t.Errorf("boom's last log line %q, want the error `podflow tasks` shows: %q", lines[len(lines)-1], want)
	}
	lines = b.TryLog("ends", runID, "boom", 1)
	if last := lines[len(lines)-1]; !strings.Contains(last, "exit code 3") || !strings.Contains(last, "(up for retry at ") {
		t.Errorf("boom's first try ends with %q, want its error and that it is up for retry", last)
	}
}

// TryLog returns the lines of one try's log.
func (b *testBundle) TryLog(dagID, runID, taskID string, try int) []string {
	b.T.Helper()
	ti := b.TI(dagID, runID, taskID)
	lines, err := b.Store.Logs(b.Ctx, ti.ID, try, 0)
	if err != nil {
		b.T.Fatal(err)
	}
	var out []string
	for _, l := range lines {
		out = append(out, l.Line)
	}
	return out
}

// TestBigLogInOrder: a task printing fast ends while a periodic flush of
// its earlier lines may still be writing; its last lines still land after
// them, and every line is there once, in chunks.
func TestBigLogInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 200000
	b.DAG("big", "dag_id: big\ntasks:\n  - {task_id: seq, operator: bash, bash_command: 'seq "+strconv.Itoa(n)+"', do_xcom_push: false}\n")
	b.Scheduler(nil)
	runID := b.Trigger("big", "")
	if got := b.WaitRun("big", runID, 2*time.Minute); got != runstate.RunSuccess {
		t.Fatalf("run %s, want success", got)
	}
	lines := b.TryLog("big", runID, "seq", 1)
	var nums []string
	for _, l := range lines {
		if _, err := strconv.Atoi(l); err == nil {
			nums = append(nums, l)
		}
	}
	if len(nums) != n {
		t.Fatalf("%d numbered lines of %d", len(nums), n)
	}
	for i, l := range nums {
		if l != strconv.Itoa(i+1) {
			t.Fatalf("line %d is %q, want %d: lines out of order", i, l, i+1)
		}
	}
	if last := lines[len(lines)-1]; last != "task succeeded" {
		t.Errorf("last line %q, want the outcome", last)
	}
	var rows int
	if err := b.Store.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM task_log_chunks c JOIN task_instances ti ON ti.id = c.ti_id
		WHERE ti.run_id = $1`, runID).Scan(&rows); err != nil || rows < n/1000 || rows > n/1000+20 {
		t.Errorf("%d rows for %d lines, %v; want about %d", rows, n, err, n/1000)
	}
}
