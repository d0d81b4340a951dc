package triggerer_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/triggerer"
	"github.com/podflow/podflow/operators/builtin"
)

func TestMain(m *testing.M) {
	os.Exit(flowtest.Main(m, map[string]func(*flowtest.Child) error{
		"scheduler": runChildScheduler,
		"triggerer": runChildTriggerer,
	}, kubetest.Stop))
}

// testBundle is the shared system-test harness with the builtin operators,
// plus the test's cluster and namespace after withCluster.
type testBundle struct {
	*flowtest.Bundle
	kubeconfig string
	ns         string
	client     kubernetes.Interface
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	return &testBundle{Bundle: flowtest.New(t, builtin.Registry(builtin.Deps{Clients: kube.NewClients()}))}
}

// withCluster gives the test a namespace on the test cluster.
func (b *testBundle) withCluster() *testBundle {
	b.T.Helper()
	b.kubeconfig, b.ns, b.client = kubetest.Kubeconfig(b.T), kubetest.Namespace(b.T), kubetest.Client(b.T)
	return b
}

// workers is a scheduler with n worker slots.
func workers(n int) func(*scheduler.Config) {
	return func(c *scheduler.Config) { c.Workers = n }
}

// limits is a triggerer with this capacity and heartbeat threshold.
func limits(capacity int, threshold time.Duration) func(*triggerer.Config) {
	return func(c *triggerer.Config) { c.Capacity, c.HeartbeatThreshold = capacity, threshold }
}

// waitRunTasks waits for the run to end and returns it with its tasks.
func (b *testBundle) waitRunTasks(dagID, runID string, timeout time.Duration) (store.Run, []store.TaskInstance) {
	b.T.Helper()
	b.WaitRun(dagID, runID, timeout)
	return b.Run(dagID, runID), b.TIs(dagID, runID)
}

func sensorsDAG(n int, delta string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "dag_id: sensors\nmax_active_tasks: 100\ntasks:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  - {task_id: wait%d, operator: time_delta_sensor_async, delta: %s}\n", i, delta)
	}
	return sb.String()
}

// Given one worker slot, ten deferred sensors of 5 s each all wait at the
// same time: the slot is freed while they are deferred. (5 s, not less: a
// sensor that starts after its moment on a loaded machine would not defer.)
func TestDeferralFreesTheWorkerSlot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("sensors", sensorsDAG(10, "5s"))
	b.Scheduler(workers(1))
	b.Triggerer(limits(100, 30*time.Second))
	start := time.Now()
	runID := b.Trigger("sensors", "")
	run, _ := b.waitRunTasks("sensors", runID, time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s", run.State)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("10 deferred 5 s waits on 1 slot took %s: they did not overlap", took)
	}
	tis, err := b.Store.TaskInstances(b.Ctx, run.PK)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		if got := b.History(ti); got != "queued,running,deferred,queued,running,success" {
			t.Errorf("%s went %s", ti.TaskID, got)
		}
		if ti.TryNumber != 1 {
			t.Errorf("%s try %d: a resume is the same try", ti.TaskID, ti.TryNumber)
		}
		log := b.TryLog(ti, 1)
		for _, want := range []string{"waiting until", "deferred to a time trigger", "resuming", "target time reached"} {
			if !strings.Contains(log, want) {
				t.Errorf("%s log lacks %q:\n%s", ti.TaskID, want, log)
			}
		}
	}
}

// Two triggerers with capacity 10 share 20 triggers; every task resumes
// exactly once.
func TestTwoTriggerersShareTriggers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("sensors", sensorsDAG(20, "6s")) // every sensor defers, even under load
	b.Scheduler(workers(20))
	t1 := b.Triggerer(limits(10, 30*time.Second))
	t2 := b.Triggerer(limits(10, 30*time.Second))
	runID := b.Trigger("sensors", "")
	b.WaitFor("20 triggers running", 30*time.Second, func() bool { return t1.Running()+t2.Running() >= 20 })
	if t1.Running() != 10 || t2.Running() != 10 {
		t.Errorf("split %d/%d, want 10/10 (capacity)", t1.Running(), t2.Running())
	}
	run, _ := b.waitRunTasks("sensors", runID, time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s", run.State)
	}
	assertResumedOnce(t, b, run)
}

func assertResumedOnce(t *testing.T, b *testBundle, run store.Run) {
	t.Helper()
	tis, err := b.Store.TaskInstances(b.Ctx, run.PK)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		hist, _ := b.Store.StateHistory(b.Ctx, ti.ID)
		n := 0 // deferred → queued: the trigger's event resumed it
		for i := 1; i < len(hist); i++ {
			if hist[i-1].State == runstate.Deferred && hist[i].State == runstate.Queued {
				n++
			}
		}
		if n != 1 || ti.State != runstate.Success {
			t.Errorf("%s: resumed %d times, state %s", ti.TaskID, n, ti.State)
		}
	}
}

// The only triggerer dies without releasing its triggers; another one takes
// them over after the heartbeat threshold and every task resumes once.
func TestDeadTriggerersTriggersAreTakenOver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The moment is 8 s after the run's logical date: long enough that all
	// 20 sensors defer even on a loaded machine (a sensor that starts after
	// its moment succeeds without deferring), short enough to pass below.
	b.DAG("sensors", sensorsDAG(20, "8s"))
	b.Scheduler(workers(20))
	// A "dead" triggerer: it claimed all 20 triggers and stopped heartbeating.
	runID := b.Trigger("sensors", "")
	moment := time.Now().Add(8 * time.Second) // not before the sensors' moment
	var claimed []store.Trigger
	b.WaitFor("the dead triggerer claims 20 triggers", 30*time.Second, func() bool {
		err := b.Store.InTx(b.Ctx, func(q store.Q) error {
			if err := q.Heartbeat(b.Ctx, "dead-triggerer", "triggerer", "nowhere", 1); err != nil {
				return err
			}
			got, err := q.ClaimTriggers(b.Ctx, "dead-triggerer", 20-len(claimed), time.Hour)
			claimed = append(claimed, got...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return len(claimed) >= 20
	})
	if _, err := b.Store.Pool.Exec(b.Ctx, `UPDATE heartbeats SET heartbeat_at = now() - interval '1 hour' WHERE id = 'dead-triggerer'`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(moment) + 500*time.Millisecond) // every moment passes while no live triggerer runs
	b.Triggerer(limits(100, 2*time.Second))
	run, _ := b.waitRunTasks("sensors", runID, time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s", run.State)
	}
	assertResumedOnce(t, b, run)
	// The task's log says why it waited: who died, when, and who took over.
	if log := b.Log("sensors", runID, "wait7"); !strings.Contains(log, "triggerer dead-triggerer stopped heartbeating (it last heartbeat at ") ||
		!strings.Contains(log, "taken over by triggerer-") {
		t.Errorf("wait7's log does not tell the takeover:\n%s", log)
	}
}

// A duplicate event for an already-resumed task changes nothing.
func TestDuplicateEventChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("one", "dag_id: one\ntasks:\n  - {task_id: w, operator: time_delta_sensor_async, delta: 1h}\n")
	b.Scheduler(workers(1))
	runID := b.Trigger("one", "")
	var trig []store.Trigger
	b.WaitFor("a trigger to claim", 30*time.Second, func() bool {
		err := b.Store.InTx(b.Ctx, func(q store.Q) error {
			var err error
			trig, err = q.ClaimTriggers(b.Ctx, "test", 1, time.Hour)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return len(trig) > 0
	})
	event := json.RawMessage(`{"status":"success"}`)
	fire := func() bool {
		var ok bool
		if err := b.Store.InTx(b.Ctx, func(q store.Q) error {
			var err error
			ok, err = q.FireTrigger(b.Ctx, trig[0].ID, event)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !fire() {
		t.Fatal("first event did not apply")
	}
	if fire() {
		t.Error("duplicate event applied")
	}
	run, _ := b.waitRunTasks("one", runID, 30*time.Second)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s", run.State)
	}
	assertResumedOnce(t, b, run)
}

// A trigger past its deadline fails the task with a clear message.
func TestTriggerDeadlineFailsTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.DAG("late", "dag_id: late\ntasks:\n  - {task_id: w, operator: time_delta_sensor_async, delta: 1h, execution_timeout: 1s}\n")
	b.Scheduler(workers(1))
	b.Triggerer(limits(10, 30*time.Second))
	runID := b.Trigger("late", "")
	run, _ := b.waitRunTasks("late", runID, 30*time.Second)
	if run.State != runstate.RunFailed {
		t.Fatalf("run %s, want failed", run.State)
	}
	ti, err := b.Store.TaskInstance(b.Ctx, run.PK, "w")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ti.Error, "timeout") || !strings.Contains(ti.Error, "deadline") {
		t.Errorf("error %q does not say the deadline passed", ti.Error)
	}
}
