package crossdag_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/dagwatch"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/crossdag"
	"github.com/podflow/podflow/operators/empty"
)

type testBundle struct {
	*flowtest.Bundle
	hub *dagwatch.Hub
}

// setup gives a bundle whose operators share one dagwatch hub, woken by its
// own LISTEN connection, as in a daemon process.
func setup(t *testing.T) *testBundle {
	t.Helper()
	b := flowtest.New(t, operators.NewRegistry(bash.New(), empty.New(), &crossdag.ExternalTaskSensor{}, &crossdag.TriggerDagRun{}))
	cfg, err := pgx.ParseConfig(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	n := notifier.New(cfg, nil, store.ChannelStateChanged)
	hub, err := dagwatch.New(b.Store, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Go("notifier", func(ctx context.Context) error { n.Run(ctx); return nil })
	b.Go("dagwatch", hub.Run)
	tdr := &crossdag.TriggerDagRun{Hub: hub, Store: b.Store}
	b.Ops = operators.NewRegistry(bash.New(), empty.New(), &crossdag.ExternalTaskSensor{Hub: hub}, tdr)
	b.Parser = dag.NewParser(b.Ops.Schemas())
	tdr.Parser = b.Parser
	return &testBundle{Bundle: b, hub: hub}
}

// triggerAt creates a manual run of a DAG at a logical date.
func (b *testBundle) triggerAt(dagID string, logical time.Time, conf string) string {
	b.T.Helper()
	var c []byte
	if conf != "" {
		c = []byte(conf)
	}
	runID, err := scheduler.TriggerRun(b.Ctx, b.Store, b.LoadDAG(dagID), logical, c)
	if err != nil {
		b.T.Fatal(err)
	}
	return runID
}

func (b *testBundle) waitState(dagID, runID, taskID, state string) {
	b.T.Helper()
	b.WaitFor(dagID+"."+taskID+" "+state, time.Minute, func() bool {
		run, err := b.Store.Run(b.Ctx, dagID, runID)
		if err != nil {
			return false
		}
		ti, err := b.Store.TaskInstance(b.Ctx, run.PK, taskID)
		return err == nil && ti.State == state
	})
}

const sensorDAG = `
dag_id: downstream
tasks:
  - task_id: wait_upstream
    operator: external_task_sensor
    external_dag_id: upstream
    external_task_id: work
    failed_states: [failed, upstream_failed]
    timeout: 1h
  - {task_id: after, operator: empty, upstream: [wait_upstream]}
`

// Given a deferred external sensor, when the task it waits on succeeds 5 s
// later, then the sensor's task resumes and succeeds within 1 s of it
// (measured from the two task instances' own end timestamps).
func TestExternalSensorResumesWithinASecond(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("upstream", "dag_id: upstream\ntasks:\n  - {task_id: work, operator: bash, bash_command: 'sleep 5; echo done'}\n")
	b.DAG("downstream", sensorDAG)
	b.Scheduler(nil)
	b.Triggerer(nil)
	logical := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	down := b.triggerAt("downstream", logical, "")
	b.waitState("downstream", down, "wait_upstream", runstate.Deferred)
	up := b.triggerAt("upstream", logical, "")
	if got := b.WaitRun("downstream", down, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("downstream run %s: %v\n%s", got, b.States("downstream", down), b.Log("downstream", down, "wait_upstream"))
	}
	work, sensor := b.TI("upstream", up, "work"), b.TI("downstream", down, "wait_upstream")
	if work.State != runstate.Success || work.EndedAt == nil || sensor.EndedAt == nil {
		t.Fatalf("work %s ended %v, sensor ended %v", work.State, work.EndedAt, sensor.EndedAt)
	}
	if took := work.EndedAt.Sub(*work.StartedAt); took < 4*time.Second {
		t.Fatalf("work took %s, want about 5 s (the sensor must have waited)", took)
	}
	lag := sensor.EndedAt.Sub(*work.EndedAt)
	t.Logf("sensor resumed and succeeded %s after the task it waited on", lag)
	if lag < 0 || lag > time.Second {
		t.Errorf("sensor ended %s after its target, want within 1 s", lag)
	}
	if h := b.History(sensor); !strings.Contains(h, "deferred") {
		t.Errorf("sensor did not defer: %s", h)
	}
}

// The sensor fails as soon as its target reaches one of failed_states,
// long before its timeout; a whole-run sensor (no external_task_id) waits
// on the run's state.
func TestExternalSensorFailsFastOnFailedStates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("upstream", "dag_id: upstream\ntasks:\n  - {task_id: work, operator: bash, bash_command: 'sleep 1; exit 3'}\n")
	b.DAG("downstream", sensorDAG)
	b.DAG("whole", `
dag_id: whole
tasks:
  - {task_id: wait_run, operator: external_task_sensor, external_dag_id: upstream, execution_delta: 24h, failed_states: [failed], timeout: 1h}
  - {task_id: in_worker, operator: external_task_sensor, external_dag_id: upstream, external_task_id: work, execution_delta: 24h, failed_states: [failed], deferrable: false}
`)
	b.Scheduler(nil)
	b.Triggerer(nil)
	logical := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	down := b.triggerAt("downstream", logical, "")
	whole := b.triggerAt("whole", logical.Add(24*time.Hour), "")
	b.waitState("downstream", down, "wait_upstream", runstate.Deferred)
	up := b.triggerAt("upstream", logical, "")
	if got := b.WaitRun("downstream", down, time.Minute); got != runstate.RunFailed {
		t.Fatalf("downstream run %s, want failed: %v", got, b.States("downstream", down))
	}
	if got := b.WaitRun("whole", whole, time.Minute); got != runstate.RunFailed {
		t.Fatalf("whole-run sensor's run %s, want failed", got)
	}
	if h := b.History(b.TI("whole", whole, "in_worker")); strings.Contains(h, "deferred") || !strings.Contains(h, "failed") {
		t.Errorf("deferrable: false sensor: %s, want failed without deferring", h)
	}
	work, sensor := b.TI("upstream", up, "work"), b.TI("downstream", down, "wait_upstream")
	if sensor.State != runstate.Failed {
		t.Fatalf("sensor %s, want failed", sensor.State)
	}
	if lag := sensor.EndedAt.Sub(*work.EndedAt); lag > time.Second {
		t.Errorf("sensor failed %s after its target, want within 1 s", lag)
	}
	if log := b.Log("downstream", down, "wait_upstream"); !strings.Contains(log, "is failed, one of failed_states") {
		t.Errorf("sensor log does not say why:\n%s", log)
	}
	if st := b.States("downstream", down)["after"]; st != runstate.UpstreamFailed {
		t.Errorf("after is %s, want upstream_failed", st)
	}
}

// trigger_dag_run with wait_for_completion ends with the child's state:
// success when the child succeeds, failure when it fails; the child gets
// the rendered conf and the run id is pushed as XCom.
func TestTriggerDagRunEndsWithChildState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("child", `
dag_id: child
tasks:
  - {task_id: check, operator: bash, bash_command: 'echo n={{ dag_run.conf.n }}; test "{{ dag_run.conf.ok }}" = yes'}
`)
	b.DAG("parent", `
dag_id: parent
params: {ok: "yes"}
tasks:
  - task_id: kick
    operator: trigger_dag_run
    trigger_dag_id: child
    trigger_run_id: "from_{{ run_id }}"
    conf: {n: "{{ 20 + 1 }}", ok: "{{ params.ok }}"}
    wait_for_completion: true
`)
	b.Scheduler(nil)
	b.Triggerer(nil)
	b.WaitFor("child synced", 30*time.Second, func() bool { _, err := b.Store.Dag(b.Ctx, "child"); return err == nil })
	for _, c := range []struct{ ok, want string }{{"yes", runstate.RunSuccess}, {"no", runstate.RunFailed}} {
		parent := b.Trigger("parent", `{"ok": "`+c.ok+`"}`)
		if got := b.WaitRun("parent", parent, time.Minute); got != c.want {
			t.Fatalf("ok=%s: parent %s, want %s:\n%s", c.ok, got, c.want, b.Log("parent", parent, "kick"))
		}
		child := "from_" + parent
		if got := b.Run("child", child).State; got != c.want {
			t.Errorf("ok=%s: child %s, want %s", c.ok, got, c.want)
		}
		if log := b.Log("child", child, "check"); !strings.Contains(log, "n=21") {
			t.Errorf("child's log lacks the rendered conf:\n%s", log)
		}
		if h := b.History(b.TI("parent", parent, "kick")); !strings.Contains(h, "deferred") {
			t.Errorf("kick did not defer while waiting: %s", h)
		}
		if c.want == runstate.RunSuccess {
			v, found, err := b.Store.XCom(b.Ctx, "parent", parent, "kick", "trigger_run_id")
			if err != nil || !found || !strings.Contains(string(v), child) {
				t.Errorf("trigger_run_id XCom = %s, %v, %v; want %s", v, found, err, child)
			}
		}
	}
}

// With a fixed trigger_run_id, a second trigger fails unless reset_dag_run
// clears the existing run, which then runs again.
func TestTriggerDagRunResetDagRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("child", "dag_id: child\ntasks:\n  - {task_id: check, operator: bash, bash_command: 'echo ran'}\n")
	for _, c := range []struct{ id, reset string }{{"resetting", "true"}, {"strict", "false"}} {
		b.DAG(c.id, `
dag_id: `+c.id+`
tasks:
  - {task_id: kick, operator: trigger_dag_run, trigger_dag_id: child, trigger_run_id: `+c.id+`_child, reset_dag_run: `+c.reset+`, wait_for_completion: true}
`)
	}
	b.Scheduler(nil)
	b.Triggerer(nil)
	b.WaitFor("child synced", 30*time.Second, func() bool { _, err := b.Store.Dag(b.Ctx, "child"); return err == nil })
	for _, id := range []string{"resetting", "strict"} {
		if got := b.WaitRun(id, b.Trigger(id, ""), time.Minute); got != runstate.RunSuccess {
			t.Fatalf("%s: first run %s", id, got)
		}
	}
	second := b.Trigger("resetting", "")
	if got := b.WaitRun("resetting", second, time.Minute); got != runstate.RunSuccess {
		t.Fatalf("resetting: second run %s:\n%s", got, b.Log("resetting", second, "kick"))
	}
	if ti := b.TI("child", "resetting_child", "check"); ti.TryNumber != 2 || ti.State != runstate.Success {
		t.Errorf("reset child's task: try %d %s, want try 2 success", ti.TryNumber, ti.State)
	}
	strict := b.Trigger("strict", "")
	if got := b.WaitRun("strict", strict, time.Minute); got != runstate.RunFailed {
		t.Fatalf("strict: second run %s, want failed", got)
	}
	if log := b.Log("strict", strict, "kick"); !strings.Contains(log, "a run strict_child of child already exists (reset_dag_run: true clears it instead)") {
		t.Errorf("strict's log does not say why:\n%s", log)
	}
}
