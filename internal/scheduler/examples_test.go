package scheduler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
)

// The bash example DAGs run end to end through the real scheduler, and the
// XCom-driven output reaches the downstream tasks. (The pod examples run in
// the kubernetes operator's end-to-end tests, against a cluster.)
func TestBashExamplesRunEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, name := range []string{"etl_xcom", "params_and_trigger_rules", "nightly_berlin"} {
		src, err := os.ReadFile(filepath.Join("..", "..", "examples", "dags", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		b.DAG(name, string(src))
	}
	b.Scheduler(nil)
	b.runExamples(t, []exampleRun{
		{"etl_xcom", "", map[string]string{"extract": "success", "transform": "success", "load": "success"},
			map[string]string{"transform": "transforming 21 rows", "load": "loading 42 rows into events"}},
		{"params_and_trigger_rules", `{"name": "Ada"}`,
			map[string]string{"greet": "success", "flaky": "failed", "alert": "success", "cleanup": "success", "report": "success"},
			map[string]string{"greet": "Hello, Ada!", "alert": "flaky failed; alerting"}},
		{"params_and_trigger_rules", `{"should_fail": "no"}`,
			map[string]string{"flaky": "success", "alert": "skipped", "cleanup": "success", "report": "success"},
			map[string]string{"flaky": "no failure today"}},
		{"nightly_berlin", "", map[string]string{"interval": "success", "partition": "success", "done": "success"},
			map[string]string{"partition": "partition day="}},
	})
}

// exampleRun is a DAG triggered with conf and what its run must show.
type exampleRun struct {
	dagID, conf string
	states      map[string]string // task → state
	logs        map[string]string // task → text its log must contain
}

// runExamples triggers each run in turn and checks that it succeeds with
// the task states and log lines it names.
func (b *testBundle) runExamples(t *testing.T, runs []exampleRun) {
	t.Helper()
	for _, c := range runs {
		runID := b.Trigger(c.dagID, c.conf)
		if got := b.WaitRun(c.dagID, runID, time.Minute); got != runstate.RunSuccess {
			t.Errorf("%s %s: run %s, tasks %v", c.dagID, c.conf, got, b.States(c.dagID, runID))
			continue
		}
		b.checkStates(t, c.dagID, runID, c.states)
		for task, want := range c.logs {
			if log := b.Log(c.dagID, runID, task); !strings.Contains(log, want) {
				t.Errorf("%s: %s's log lacks %q:\n%s", c.dagID, task, want, log)
			}
		}
	}
}

// dag_run.conf overrides params, declared or not (Airflow's
// dag_run_conf_overrides_params default). A template reading a param only
// a conf brings opts out of validate's params check (check_templates).
func TestConfOverridesParams(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("p", "dag_id: p\nparams: {table: events, size: 1}\ntasks:\n  - {task_id: a, operator: bash, check_templates: false, bash_command: 'echo {{ params.table }}-{{ params.size }}-{{ params.extra }}'}\n")
	b.Scheduler(nil)
	runID := b.Trigger("p", `{"size": 5, "extra": "x"}`)
	if got := b.WaitRun("p", runID, 30*time.Second); got != runstate.RunSuccess {
		t.Fatalf("run %s: %s", got, b.Log("p", runID, "a"))
	}
	if log := b.Log("p", runID, "a"); !strings.Contains(log, "events-5-x") {
		t.Errorf("log lacks events-5-x:\n%s", log)
	}
}

// checkStates reports every task of the run whose state is not the one
// want gives it.
func (b *testBundle) checkStates(t *testing.T, dagID, runID string, want map[string]string) {
	t.Helper()
	got := b.States(dagID, runID)
	for task, w := range want {
		if got[task] != w {
			t.Errorf("%s %s: %s is %s, want %s", dagID, runID, task, got[task], w)
		}
	}
}
