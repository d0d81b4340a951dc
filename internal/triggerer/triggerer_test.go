package triggerer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/kubernetes"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/triggerer"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/builtin"
)

func TestMain(m *testing.M) {
	if child := childProcess(); child != nil {
		os.Exit(child())
	}
	code := m.Run()
	kubetest.Stop()
	if err := pgtest.Stop(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

type testBundle struct {
	t     *testing.T
	ctx   context.Context
	url   string
	store *store.Store
	dir   string
	ops   *operators.Registry

	// The test's cluster and namespace, after withCluster.
	kubeconfig string
	ns         string
	client     kubernetes.Interface
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	url := pgtest.NewDatabase(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	ops := builtin.Registry(builtin.Deps{Clients: kube.NewClients()})
	return &testBundle{t: t, ctx: ctx, url: url, store: st, dir: t.TempDir(), ops: ops}
}

// withCluster gives the test a namespace on the test cluster.
func (b *testBundle) withCluster() *testBundle {
	b.t.Helper()
	b.kubeconfig, b.ns, b.client = kubetest.Kubeconfig(b.t), kubetest.Namespace(b.t), kubetest.Client(b.t)
	return b
}

func logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(os.Getenv("TEST_LOG_LEVEL")), Output: os.Stderr})
}

func (b *testBundle) scheduler(workers int) {
	s := scheduler.New(b.store, b.ops, scheduler.Config{DagsFolder: b.dir, Workers: workers,
		LoopInterval: 100 * time.Millisecond, SyncInterval: 50 * time.Millisecond, Logger: logger()})
	b.run(s.Run)
}

// triggerer starts a triggerer; stop ends it cleanly.
func (b *testBundle) triggerer(capacity int, threshold time.Duration) (t *triggerer.Triggerer, stop func()) {
	tr := triggerer.New(b.store, b.ops.Triggers(),
		triggerer.Config{Capacity: capacity, HeartbeatThreshold: threshold, PollInterval: 100 * time.Millisecond, Logger: logger()})
	return tr, b.run(tr.Run)
}

func (b *testBundle) run(fn func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = fn(ctx); close(done) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.t.Error("did not stop")
		}
	}
	b.t.Cleanup(stop)
	return stop
}

func (b *testBundle) writeDAG(name, src string) *dag.DAG {
	b.t.Helper()
	path := filepath.Join(b.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		b.t.Fatal(err)
	}
	d, errs := dag.NewParser(b.ops.Schemas()).ParseFile(path)
	if len(errs) > 0 {
		b.t.Fatal(errs)
	}
	return d
}

func (b *testBundle) trigger(d *dag.DAG) string {
	b.t.Helper()
	runID, err := scheduler.TriggerRun(b.ctx, b.store, d, time.Now().UTC(), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return runID
}

func (b *testBundle) waitRun(dagID, runID string, timeout time.Duration) store.Run {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		run, err := b.store.Run(b.ctx, dagID, runID)
		if err != nil {
			b.t.Fatal(err)
		}
		if run.State == runstate.RunSuccess || run.State == runstate.RunFailed {
			return run
		}
		if time.Now().After(deadline) {
			tis, _ := b.store.TaskInstances(b.ctx, run.PK)
			b.t.Fatalf("run %s not finished after %s: %+v", runID, timeout, tis)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sensorsDAG(n int, delta string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "dag_id: sensors\nmax_active_tasks: 100\ntasks:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  - {task_id: wait%d, operator: time_delta_sensor_async, delta: %s}\n", i, delta)
	}
	return sb.String()
}

// Given one worker slot, ten deferred sensors of 2 s each all wait at the
// same time: the slot is freed while they are deferred.
func TestDeferralFreesTheWorkerSlot(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.writeDAG("sensors", sensorsDAG(10, "2s"))
	b.scheduler(1)
	b.triggerer(100, 30*time.Second)
	start := time.Now()
	runID := b.trigger(d)
	run := b.waitRun("sensors", runID, time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s", run.State)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("10 deferred 2 s waits on 1 slot took %s: they did not overlap", took)
	}
	tis, err := b.store.TaskInstances(b.ctx, run.PK)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		hist, err := b.store.StateHistory(b.ctx, ti.ID)
		if err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, h := range hist {
			states = append(states, h.State)
		}
		got := strings.Join(states, ",")
		if got != "queued,running,deferred,queued,running,success" {
			t.Errorf("%s went %s", ti.TaskID, got)
		}
		if ti.TryNumber != 1 {
			t.Errorf("%s try %d: a resume is the same try", ti.TaskID, ti.TryNumber)
		}
		lines, _ := b.store.Logs(b.ctx, ti.ID, 1, 0)
		var log strings.Builder
		for _, l := range lines {
			log.WriteString(l.Line + "\n")
		}
		for _, want := range []string{"waiting until", "deferred to a time trigger", "resuming", "target time reached"} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("%s log lacks %q:\n%s", ti.TaskID, want, log.String())
			}
		}
	}
}

// Two triggerers with capacity 10 share 20 triggers; every task resumes
// exactly once.
func TestTwoTriggerersShareTriggers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.writeDAG("sensors", sensorsDAG(20, "3s"))
	b.scheduler(20)
	t1, _ := b.triggerer(10, 30*time.Second)
	t2, _ := b.triggerer(10, 30*time.Second)
	runID := b.trigger(d)
	deadline := time.Now().Add(30 * time.Second)
	for t1.Running()+t2.Running() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("triggers running: %d + %d, want 20", t1.Running(), t2.Running())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if t1.Running() != 10 || t2.Running() != 10 {
		t.Errorf("split %d/%d, want 10/10 (capacity)", t1.Running(), t2.Running())
	}
	run := b.waitRun("sensors", runID, time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s", run.State)
	}
	assertResumedOnce(t, b, run)
}

func assertResumedOnce(t *testing.T, b *testBundle, run store.Run) {
	t.Helper()
	tis, err := b.store.TaskInstances(b.ctx, run.PK)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		hist, _ := b.store.StateHistory(b.ctx, ti.ID)
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
	d := b.writeDAG("sensors", sensorsDAG(20, "1s"))
	b.scheduler(20)
	// A "dead" triggerer: it claimed all 20 triggers and stopped heartbeating.
	runID := b.trigger(d)
	deadline := time.Now().Add(30 * time.Second)
	var claimed []store.Trigger
	for len(claimed) < 20 {
		err := b.store.InTx(b.ctx, func(q store.Q) error {
			if err := q.Heartbeat(b.ctx, "dead-triggerer", "triggerer", "nowhere", 1); err != nil {
				return err
			}
			got, err := q.ClaimTriggers(b.ctx, "dead-triggerer", 20-len(claimed), time.Hour)
			claimed = append(claimed, got...)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d triggers deferred", len(claimed))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := b.store.Pool.Exec(b.ctx, `UPDATE heartbeats SET heartbeat_at = now() - interval '1 hour' WHERE id = 'dead-triggerer'`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // every moment passes while no live triggerer runs
	b.triggerer(100, 2*time.Second)
	run := b.waitRun("sensors", runID, time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s", run.State)
	}
	assertResumedOnce(t, b, run)
}

// A duplicate event for an already-resumed task changes nothing.
func TestDuplicateEventChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.writeDAG("one", "dag_id: one\ntasks:\n  - {task_id: w, operator: time_delta_sensor_async, delta: 1h}\n")
	b.scheduler(1)
	runID := b.trigger(d)
	var trig []store.Trigger
	deadline := time.Now().Add(30 * time.Second)
	for len(trig) == 0 {
		err := b.store.InTx(b.ctx, func(q store.Q) error {
			var err error
			trig, err = q.ClaimTriggers(b.ctx, "test", 1, time.Hour)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no trigger")
		}
		time.Sleep(20 * time.Millisecond)
	}
	event := json.RawMessage(`{"status":"success"}`)
	fire := func() bool {
		var ok bool
		if err := b.store.InTx(b.ctx, func(q store.Q) error {
			var err error
			ok, err = q.FireTrigger(b.ctx, trig[0].ID, event)
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
	run := b.waitRun("one", runID, 30*time.Second)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s", run.State)
	}
	assertResumedOnce(t, b, run)
}

// A trigger past its deadline fails the task with a clear message.
func TestTriggerDeadlineFailsTask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	d := b.writeDAG("late", "dag_id: late\ntasks:\n  - {task_id: w, operator: time_delta_sensor_async, delta: 1h, execution_timeout: 1s}\n")
	b.scheduler(1)
	b.triggerer(10, 30*time.Second)
	runID := b.trigger(d)
	run := b.waitRun("late", runID, 30*time.Second)
	if run.State != runstate.RunFailed {
		t.Fatalf("run %s, want failed", run.State)
	}
	ti, err := b.store.TaskInstance(b.ctx, run.PK, "w")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ti.Error, "timeout") || !strings.Contains(ti.Error, "deadline") {
		t.Errorf("error %q does not say the deadline passed", ti.Error)
	}
}
