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
	"github.com/podflow/podflow/operators/branch"
	"github.com/podflow/podflow/operators/empty"
)

func setupDynamic(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{flowtest.New(t, operators.NewRegistry(bash.New(), empty.New(), branch.Branch{}, branch.ShortCircuit{}))}
}

// A branch by a param picks one of two paths; the other is skipped and the
// join (none_failed_min_one_success) runs, as in Airflow.
func TestBranchByParamAndJoin(t *testing.T) {
	t.Parallel()
	b := setupDynamic(t)
	b.DAG("br", `
dag_id: br
params: {mode: incremental}
tasks:
  - {task_id: pick, operator: branch, branch: "{{ 'full_load' if params.mode == 'full' else 'incremental' }}"}
  - {task_id: full_load, operator: bash, bash_command: echo full, upstream: [pick]}
  - {task_id: incremental, operator: bash, bash_command: echo incremental, upstream: [pick]}
  - {task_id: after_full, operator: empty, upstream: [full_load]}
  - {task_id: join, operator: bash, bash_command: echo joined, upstream: [after_full, incremental], trigger_rule: none_failed_min_one_success}
  - {task_id: strict_join, operator: empty, upstream: [after_full, incremental]}
`)
	b.Scheduler(nil)
	for _, c := range []struct {
		conf string
		want map[string]string
	}{
		{"", map[string]string{"pick": "success", "full_load": "skipped", "after_full": "skipped", "incremental": "success",
			"join": "success", "strict_join": "skipped"}},
		{`{"mode": "full"}`, map[string]string{"pick": "success", "full_load": "success", "after_full": "success",
			"incremental": "skipped", "join": "success", "strict_join": "skipped"}},
	} {
		runID := b.Trigger("br", c.conf)
		if got := b.WaitRun("br", runID, time.Minute); got != runstate.RunSuccess {
			t.Fatalf("conf %s: run %s: %v", c.conf, got, b.States("br", runID))
		}
		states := b.States("br", runID)
		for task, want := range c.want {
			if states[task] != want {
				t.Errorf("conf %s: %s is %s, want %s", c.conf, task, states[task], want)
			}
		}
	}
}

// A branch naming a task that is not directly after it fails, naming it.
func TestBranchToANonDownstreamTaskFails(t *testing.T) {
	t.Parallel()
	b := setupDynamic(t)
	b.DAG("bad", `
dag_id: bad
tasks:
  - {task_id: pick, operator: branch, branch: elsewhere}
  - {task_id: a, operator: empty, upstream: [pick]}
  - {task_id: elsewhere, operator: empty}
`)
	b.Scheduler(nil)
	runID := b.Trigger("bad", "")
	if got := b.WaitRun("bad", runID, time.Minute); got != runstate.RunFailed {
		t.Fatalf("run %s", got)
	}
	ti := b.TI("bad", runID, "pick")
	if ti.State != runstate.Failed || !strings.Contains(ti.Error, `branch chose "elsewhere", which is not a direct downstream task of pick`) {
		t.Fatalf("pick: %s %q", ti.State, ti.Error)
	}
	if s := b.States("bad", runID)["a"]; s != runstate.UpstreamFailed {
		t.Errorf("a is %s", s)
	}
}

// A short-circuit on an empty XCom skips everything after it, trigger
// rules notwithstanding (ignore_downstream_trigger_rules defaults to
// true); with false only the direct downstream is skipped.
func TestShortCircuitOnEmptyXCom(t *testing.T) {
	t.Parallel()
	b := setupDynamic(t)
	b.DAG("sc", `
dag_id: sc
tasks:
  - {task_id: list_files, operator: bash, bash_command: "echo '[]'"}
  - {task_id: any_files, operator: short_circuit, condition: "{{ ti.xcom_pull('list_files') }}", upstream: [list_files]}
  - {task_id: process, operator: bash, bash_command: echo processing, upstream: [any_files]}
  - {task_id: report, operator: bash, bash_command: echo report, upstream: [process], trigger_rule: all_done}
  - {task_id: only_direct, operator: short_circuit, condition: "{{ ti.xcom_pull('list_files') }}", ignore_downstream_trigger_rules: false, upstream: [list_files]}
  - {task_id: direct, operator: empty, upstream: [only_direct]}
  - {task_id: cleanup, operator: bash, bash_command: echo cleanup, upstream: [direct], trigger_rule: all_done}
`)
	b.Scheduler(nil)
	runID := b.Trigger("sc", "")
	if got := b.WaitRun("sc", runID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("run %s: %v", got, b.States("sc", runID))
	}
	want := map[string]string{"list_files": "success", "any_files": "success", "process": "skipped", "report": "skipped",
		"only_direct": "success", "direct": "skipped", "cleanup": "success"}
	b.checkStates(t, "sc", runID, want)
}

// A task group with a dependency into it and out of it: its roots wait for
// extract, load waits for its leaves, and ids carry the group's prefix.
func TestTaskGroupDependenciesInAndOut(t *testing.T) {
	t.Parallel()
	b := setupDynamic(t)
	b.DAG("tg", `
dag_id: tg
tasks:
  - {task_id: extract, operator: bash, bash_command: "echo 21"}
  - {task_id: load, operator: bash, bash_command: "echo loaded {{ ti.xcom_pull('transform.double') }}"}
task_groups:
  - group_id: transform
    tasks:
      - {task_id: double, operator: bash, bash_command: "echo $(( {{ ti.xcom_pull('extract') }} * 2 ))"}
      - {task_id: check, operator: bash, bash_command: "test {{ ti.xcom_pull('transform.double') }} = 42", upstream: [double]}
dependencies: ["extract >> transform >> load"]
`)
	b.Scheduler(nil)
	runID := b.Trigger("tg", "")
	if got := b.WaitRun("tg", runID, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("run %s: %v", got, b.States("tg", runID))
	}
	ext, dbl, chk, load := b.TI("tg", runID, "extract"), b.TI("tg", runID, "transform.double"), b.TI("tg", runID, "transform.check"), b.TI("tg", runID, "load")
	if !dbl.StartedAt.After(*ext.EndedAt) || !load.StartedAt.After(*chk.EndedAt) {
		t.Errorf("order: extract ended %v, double started %v; check ended %v, load started %v", ext.EndedAt, dbl.StartedAt, chk.EndedAt, load.StartedAt)
	}
	if log := b.Log("tg", runID, "load"); !strings.Contains(log, "loaded 42") {
		t.Errorf("load's log:\n%s", log)
	}
}

// The examples of dynamic DAGs run end to end as the README shows them.
func TestDynamicExamplesRunEndToEnd(t *testing.T) {
	t.Parallel()
	b := setupDynamic(t)
	for _, name := range []string{"mapping", "branching", "task_groups"} {
		src, err := os.ReadFile(filepath.Join("..", "..", "examples", "dags", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		b.DAG(name, string(src))
	}
	b.Scheduler(nil)
	b.runExamples(t, []exampleRun{
		{"mapping", "", map[string]string{"list_partitions": "success", "process": "success", "matrix": "success", "collect": "success"},
			map[string]string{"collect": "collected 6 results:\nrows for 2026-01-01: 7; rows for 2026-01-02: 17; rows for 2026-01-03: 27"}},
		{"branching", "", map[string]string{"full_load": "skipped", "incremental_load": "success", "join": "success",
			"anything_new": "success", "publish": "skipped"}, map[string]string{"join": "loaded (incremental)"}},
		{"branching", `{"mode": "full"}`, map[string]string{"full_load": "success", "incremental_load": "skipped", "join": "success"},
			map[string]string{"join": "loaded (full)"}},
		{"task_groups", "", map[string]string{"transform.clean": "success", "transform.checks.even": "success", "load": "success"},
			map[string]string{"load": "loading 42 rows"}},
	})
}
