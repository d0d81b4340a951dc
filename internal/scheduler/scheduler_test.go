package scheduler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

func TestMain(m *testing.M) {
	os.Exit(flowtest.Main(m, map[string]func(*flowtest.Child) error{"scheduler": runChildScheduler}))
}

// testBundle is the shared system-test harness plus this package's own
// helpers (child processes, interval files).
type testBundle struct{ *flowtest.Bundle }

func setup(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{flowtest.New(t, operators.NewRegistry(bash.New(), empty.New()))}
}

func TestChainPassesXCom(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("etl", `
dag_id: etl
tasks:
  - task_id: extract
    operator: bash
    bash_command: 'echo noise; echo 42'
  - task_id: transform
    operator: bash
    bash_command: 'echo $(( {{ ti.xcom_pull("extract") }} * 2 ))'
    upstream: [extract]
  - task_id: load
    operator: bash
    bash_command: 'echo "loaded {{ task_instance.xcom_pull(task_ids="transform") }} for {{ dag_run.conf.get("who", "nobody") }}"'
    upstream: [transform]
`)
	b.Scheduler(nil)
	runID := b.Trigger("etl", `{"who": "ops"}`)
	if got := b.WaitRun("etl", runID, 30*time.Second); got != runstate.RunSuccess {
		t.Fatalf("run %s, tasks %v\nlog of load:\n%s", got, b.States("etl", runID), b.Log("etl", runID, "load"))
	}
	if log := b.Log("etl", runID, "load"); !strings.Contains(log, "loaded 84 for ops") {
		t.Errorf("load's log lacks the upstream XCom:\n%s", log)
	}
	raw, ok, err := b.Store.XCom(b.Ctx, "etl", runID, "transform", "return_value")
	if err != nil || !ok || string(raw) != `"84"` {
		t.Errorf("transform's XCom = %s, %v, %v; want \"84\"", raw, ok, err)
	}
}

func TestRetriesThenSuccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	marker := filepath.Join(t.TempDir(), "tries")
	b.DAG("flaky", `
dag_id: flaky
default_args: {retries: 2, retry_delay: 0}
tasks:
  - task_id: flaky
    operator: bash
    bash_command: 'echo x >> `+marker+`; [ $(wc -l < `+marker+`) -ge 2 ]'
`)
	b.Scheduler(nil)
	runID := b.Trigger("flaky", "")
	if got := b.WaitRun("flaky", runID, 30*time.Second); got != runstate.RunSuccess {
		t.Fatalf("run %s: %s", got, b.Log("flaky", runID, "flaky"))
	}
	if ti := b.TI("flaky", runID, "flaky"); ti.TryNumber != 2 {
		t.Errorf("try_number = %d, want 2", ti.TryNumber)
	}
}

func TestRetriesExhaustedFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("bad", `
dag_id: bad
default_args: {retries: 1, retry_delay: 0}
tasks:
  - {task_id: boom, operator: bash, bash_command: 'echo about to fail; exit 3'}
  - {task_id: after, operator: bash, bash_command: 'echo never', upstream: [boom]}
`)
	b.Scheduler(nil)
	runID := b.Trigger("bad", "")
	if got := b.WaitRun("bad", runID, 30*time.Second); got != runstate.RunFailed {
		t.Fatalf("run %s, want failed", got)
	}
	states := b.States("bad", runID)
	if states["boom"] != runstate.Failed || states["after"] != runstate.UpstreamFailed {
		t.Errorf("states = %v", states)
	}
	ti := b.TI("bad", runID, "boom")
	if ti.TryNumber != 2 || !strings.Contains(ti.Error, "exit code 3") || !strings.Contains(ti.Error, "about to fail") {
		t.Errorf("try %d, error %q: want 2 tries and exit code 3 with the last output", ti.TryNumber, ti.Error)
	}
}

func TestExecutionTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	b.DAG("slow", `
dag_id: slow
tasks:
  - task_id: sleepy
    operator: bash
    execution_timeout: 1s
    bash_command: 'sleep 60 & echo $! > `+pidFile+`; wait'
`)
	b.Scheduler(nil)
	runID := b.Trigger("slow", "")
	start := time.Now()
	if got := b.WaitRun("slow", runID, 30*time.Second); got != runstate.RunFailed {
		t.Fatalf("run %s, want failed", got)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("timeout took %s", took)
	}
	ti := b.TI("slow", runID, "sleepy")
	if !strings.Contains(ti.Error, "execution_timeout") {
		t.Errorf("error %q does not name execution_timeout", ti.Error)
	}
	pid, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	// The child sleep must be gone (not just bash).
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := os.Stat("/proc/" + strings.TrimSpace(string(pid)))
		if err != nil {
			break
		}
		if stat, _ := os.ReadFile("/proc/" + strings.TrimSpace(string(pid)) + "/stat"); strings.Contains(string(stat), ") Z ") {
			break // zombie awaiting its reaper: dead
		}
		if time.Now().After(deadline) {
			t.Fatalf("child sleep %s still alive after execution_timeout", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTriggerRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("rules", `
dag_id: rules
tasks:
  - {task_id: ok, operator: bash, bash_command: 'true'}
  - {task_id: fail, operator: bash, bash_command: 'exit 1'}
  - {task_id: skip, operator: bash, bash_command: 'exit 99'}
  - {task_id: all_success, operator: empty, upstream: [ok, fail]}
  - {task_id: all_done, operator: empty, upstream: [ok, fail], trigger_rule: all_done}
  - {task_id: one_failed, operator: empty, upstream: [ok, fail], trigger_rule: one_failed}
  - {task_id: one_success, operator: empty, upstream: [ok, fail], trigger_rule: one_success}
  - {task_id: all_failed, operator: empty, upstream: [fail], trigger_rule: all_failed}
  - {task_id: none_failed, operator: empty, upstream: [ok, skip], trigger_rule: none_failed}
  - {task_id: none_skipped, operator: empty, upstream: [ok, skip], trigger_rule: none_skipped}
  - {task_id: after_skip, operator: empty, upstream: [skip]}
  - {task_id: nfmos, operator: empty, upstream: [skip], trigger_rule: none_failed_min_one_success}
  - {task_id: always, operator: empty, upstream: [fail], trigger_rule: always}
  - {task_id: downstream_of_uf, operator: empty, upstream: [all_success]}
`)
	b.Scheduler(nil)
	runID := b.Trigger("rules", "")
	b.WaitRun("rules", runID, 30*time.Second)
	want := map[string]string{
		"ok": "success", "fail": "failed", "skip": "skipped",
		"all_success": "upstream_failed", "all_done": "success", "one_failed": "success",
		"one_success": "success", "all_failed": "success", "none_failed": "success",
		"none_skipped": "skipped", "after_skip": "skipped", "nfmos": "skipped", "always": "success",
		"downstream_of_uf": "upstream_failed",
	}
	b.checkStates(t, "rules", runID, want)
}

func TestBrokenFileDoesNotStopOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("broken", "dag_id: broken\ntasks:\n  - task_id: a\n    operator: nope\n")
	b.DAG("good", "dag_id: good\ntasks:\n  - {task_id: a, operator: bash, bash_command: 'echo fine'}\n")
	b.DAG("cycle", "dag_id: cyc\ntasks:\n  - {task_id: a, operator: empty, upstream: [b]}\n  - {task_id: b, operator: empty, upstream: [a]}\n")
	b.Scheduler(nil)
	runID := b.Trigger("good", "")
	if got := b.WaitRun("good", runID, 30*time.Second); got != runstate.RunSuccess {
		t.Fatalf("good run %s", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		files, err := b.Store.BrokenFiles(b.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 2 {
			for _, f := range files {
				if !strings.Contains(f.Errors, filepath.Base(f.Path)+":") {
					t.Errorf("errors of %s do not name the file: %s", f.Path, f.Errors)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broken files recorded: %v", files)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBrokenEditKeepsLastGoodVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("v", "dag_id: v\ntasks:\n  - {task_id: a, operator: bash, bash_command: 'echo v1'}\n")
	b.Scheduler(nil)
	b.WaitFor("DAG v synced", 10*time.Second, func() bool {
		row, err := b.Store.Dag(b.Ctx, "v")
		return err == nil && row.Hash != ""
	})
	b.DAG("v", "dag_id: v\ntasks:\n  - {task_id: a, operator: bash, bash_commnd: 'echo v2'}\n")
	b.WaitFor("broken edit recorded", 20*time.Second, func() bool {
		row, err := b.Store.Dag(b.Ctx, "v")
		if err != nil {
			t.Fatal(err)
		}
		if row.Errors != "" && (!strings.Contains(row.Errors, "did you mean") || row.Hash == "") {
			t.Errorf("row %+v", row)
		}
		return row.Errors != ""
	})
}

func TestCatchupCreatesRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now().UTC().Add(-5 * time.Hour).Truncate(time.Hour)
	b.DAG("hourly", `
dag_id: hourly
schedule: "@hourly"
start_date: `+start.Format(time.RFC3339)+`
catchup: true
max_active_runs: 2
tasks:
  - {task_id: a, operator: empty}
`)
	b.DAG("nocatch", `
dag_id: nocatch
schedule: "@hourly"
start_date: `+start.Format(time.RFC3339)+`
tasks:
  - {task_id: a, operator: empty}
`)
	b.Scheduler(nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		runs, err := b.Store.Runs(b.Ctx, "hourly", 100)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, r := range runs {
			if r.State == runstate.RunSuccess {
				done++
			}
		}
		if len(runs) == 5 && done == 5 {
			for i, r := range runs { // newest first
				want := start.Add(time.Duration(4-i) * time.Hour)
				if !r.LogicalDate.Equal(want) || !r.DataIntervalEnd.Equal(want.Add(time.Hour)) {
					t.Errorf("run %d: logical %s interval end %s, want %s", i, r.LogicalDate, r.DataIntervalEnd, want)
				}
			}
			break
		}
		if len(runs) > 5 {
			t.Fatalf("%d runs, want 5", len(runs))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs (%d done), want 5", len(runs), done)
		}
		time.Sleep(50 * time.Millisecond)
	}
	runs, err := b.Store.Runs(b.Ctx, "nocatch", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || !runs[0].LogicalDate.Equal(start.Add(4*time.Hour)) {
		t.Errorf("without catchup: %d runs (%v), want only the latest interval", len(runs), runs)
	}
}

// TestHostileDAGFilesDoNotSlowOthers: files built to crash or stall the
// parser cost their own file only; the good DAG runs as fast as alone.
func TestHostileDAGFilesDoNotSlowOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	nested := strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000)
	b.DAG("parens", "dag_id: parens\ntasks:\n  - {task_id: a, operator: bash, bash_command: '{{ "+nested+" }}'}\n")
	ifs := strings.Repeat("{% if true %}", 8000) + "x" + strings.Repeat("{% endif %}", 8000) // 192 KB
	b.DAG("ifs", "dag_id: ifs\ntasks:\n  - {task_id: a, operator: bash, bash_command: '"+ifs+"'}\n")
	b.DAG("huge", "dag_id: huge\ntasks:\n  - {task_id: a, operator: bash, bash_command: echo}\n# "+strings.Repeat("x", 2<<20)+"\n")
	b.DAG("good", "dag_id: good\ntasks:\n  - {task_id: a, operator: bash, bash_command: 'echo fine'}\n")
	b.Scheduler(nil)
	start := time.Now()
	runID := b.Trigger("good", "")
	if got := b.WaitRun("good", runID, 30*time.Second); got != runstate.RunSuccess {
		t.Fatalf("good run %s", got)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the good run took %s beside the hostile files", took)
	}
	want := map[string]string{"parens.yaml": "nested", "ifs.yaml": "nested", "huge.yaml": "over 1048576 bytes"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		files, err := b.Store.BrokenFiles(b.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, f := range files {
			got[filepath.Base(f.Path)] = f.Errors
		}
		missing := false
		for name, msg := range want {
			if !strings.Contains(got[name], msg) {
				missing = true
			}
		}
		if !missing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broken files recorded: %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A DAG whose file is removed from the folder becomes inactive (no more
// scheduled runs; its row and history stay) and a removed broken file's
// errors go; putting the same file back makes the DAG active again.
func TestRemovedFileDeactivatesItsDAG(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now().UTC().Add(-5 * time.Hour).Truncate(time.Hour).Format(time.RFC3339)
	gone := "dag_id: gone\nschedule: '@hourly'\nstart_date: " + start + "\ntasks:\n  - {task_id: a, operator: empty}\n"
	b.DAG("gone", gone)
	b.DAG("stays", "dag_id: stays\nschedule: '@hourly'\nstart_date: "+start+"\ntasks:\n  - {task_id: a, operator: empty}\n")
	b.DAG("junk", "dag_id: junk\ntasks: [{task_id: a, operator: nope}]\n")
	b.Scheduler(nil)
	scheduled := func() map[string]bool {
		rows, err := b.Store.ScheduledDags(b.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, r := range rows {
			out[r.DagID] = true
		}
		return out
	}
	b.WaitFor("gone's scheduled run and junk's errors", 20*time.Second, func() bool {
		runs, err := b.Store.Runs(b.Ctx, "gone", 10)
		if err != nil {
			t.Fatal(err)
		}
		files, err := b.Store.BrokenFiles(b.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(runs) == 1 && len(files) == 1
	})
	if s := scheduled(); !s["gone"] || !s["stays"] {
		t.Fatalf("scheduled DAGs before the removal: %v", s)
	}

	for _, name := range []string{"gone.yaml", "junk.yaml"} {
		if err := os.Remove(filepath.Join(b.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	b.WaitFor("gone inactive, junk's errors gone", 20*time.Second, func() bool {
		row, err := b.Store.Dag(b.Ctx, "gone")
		if err != nil {
			t.Fatal(err)
		}
		files, err := b.Store.BrokenFiles(b.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		return !row.Active && len(files) == 0
	})
	if s := scheduled(); s["gone"] || !s["stays"] {
		t.Errorf("scheduled DAGs after the removal: %v, want stays and not gone", s)
	}
	if row, _ := b.Store.Dag(b.Ctx, "stays"); !row.Active {
		t.Error("stays was deactivated")
	}
	if runs, _ := b.Store.Runs(b.Ctx, "gone", 10); len(runs) != 1 {
		t.Errorf("gone's history: %d runs, want 1", len(runs))
	}

	b.DAG("gone", gone) // the same file back
	b.WaitFor("gone active again", 20*time.Second, func() bool {
		row, err := b.Store.Dag(b.Ctx, "gone")
		if err != nil {
			t.Fatal(err)
		}
		return row.Active
	})
	if s := scheduled(); !s["gone"] {
		t.Errorf("gone not scheduled again: %v", s)
	}

	// Renamed: the same DAG from another file stays active, at its new path.
	moved := filepath.Join(b.Dir, "moved.yaml")
	if err := os.Rename(filepath.Join(b.Dir, "gone.yaml"), moved); err != nil {
		t.Fatal(err)
	}
	b.WaitFor("gone's new path", 20*time.Second, func() bool {
		row, err := b.Store.Dag(b.Ctx, "gone")
		if err != nil {
			t.Fatal(err)
		}
		return row.Path == moved
	})
	if row, _ := b.Store.Dag(b.Ctx, "gone"); !row.Active {
		t.Error("a renamed file's DAG is inactive")
	}
}
