package triggerer_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/triggerer"
	"github.com/podflow/podflow/operators/builtin"
)

// Pod tasks through the scheduler and the triggerer on the test cluster.

// triggererChildEnv makes the test binary act as a triggerer process (to
// kill -9 it).
const triggererChildEnv = "PODFLOW_TEST_TRIGGERER_PROCESS"

// childProcess is the main of a child process the tests start from this
// binary, or nil when this is the test binary itself.
func childProcess() func() int {
	switch {
	case os.Getenv(triggererChildEnv) == "1":
		return runChildTriggerer
	case os.Getenv(schedulerChildEnv) == "1":
		return runChildScheduler
	}
	return nil
}

func runChildTriggerer() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	threshold, _ := time.ParseDuration(os.Getenv("THRESHOLD"))
	ops := builtin.Registry(builtin.Deps{Clients: kube.NewClients()})
	t := triggerer.New(st, ops.Triggers(), triggerer.Config{Capacity: 100, HeartbeatThreshold: threshold,
		PollInterval: 100 * time.Millisecond, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})})
	fmt.Println("ready", t.ID())
	if err := t.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// triggererProcess starts a triggerer as a separate process.
func (b *testBundle) triggererProcess() *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), triggererChildEnv+"=1", "DATABASE_URL="+b.url, "THRESHOLD=2s")
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.HasPrefix(line, "ready") {
		b.t.Fatalf("triggerer process: %q %v", line, err)
	}
	return cmd
}

// podTask is a kubernetes_pod task on the test's cluster and namespace.
func (b *testBundle) podTask(id, cmd string, extra string) string {
	return fmt.Sprintf(`  - task_id: %s
    operator: kubernetes_pod
    image: alpine
    namespace: %s
    config_file: %s
    cmds: ["sh", "-c", %q]
    on_finish_action: keep_pod
%s`, id, b.ns, b.kubeconfig, cmd, extra)
}

// waitRunTasks waits for the run to end and returns it with its tasks.
func (b *testBundle) waitRunTasks(dagID, runID string, timeout time.Duration) (store.Run, []store.TaskInstance) {
	b.t.Helper()
	run := b.waitRun(dagID, runID, timeout)
	tis, err := b.store.TaskInstances(b.ctx, run.PK)
	if err != nil {
		b.t.Fatal(err)
	}
	return run, tis
}

func (b *testBundle) log(ti store.TaskInstance) string {
	lines, _ := b.store.Logs(b.ctx, ti.ID, ti.TryNumber, 0)
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString("[" + l.Source + "] " + l.Line + "\n")
	}
	return sb.String()
}

func (b *testBundle) history(ti store.TaskInstance) string {
	h, _ := b.store.StateHistory(b.ctx, ti.ID)
	var s []string
	for _, x := range h {
		s = append(s, x.State)
	}
	return strings.Join(s, ",")
}

// The seed's deferrable write-xcom → bash xcom_pull DAG succeeds through the
// scheduler and the triggerer; the pod task passed through deferred.
func TestDeferrableWriteXCom(t *testing.T) {
	b := setup(t).withCluster()
	d := b.writeDAG("xcom_async", "dag_id: xcom_async\ntasks:\n"+
		b.podTask("write-xcom", "sleep 1; mkdir -p /airflow/xcom/; echo '[1,2,3,4]' > /airflow/xcom/return.json", "    do_xcom_push: true\n    deferrable: true\n")+
		"  - task_id: pod_task_xcom_result\n    operator: bash\n    upstream: [write-xcom]\n    bash_command: echo \"{{ task_instance.xcom_pull('write-xcom')[0] }}\"\n")
	b.scheduler(4)
	b.triggerer(100, 2*time.Second)
	run, tis := b.waitRunTasks("xcom_async", b.trigger(d), 2*time.Minute)
	if run.State != runstate.RunSuccess {
		for _, ti := range tis {
			t.Logf("%s %s %s\n%s", ti.TaskID, ti.State, ti.Error, b.log(ti))
		}
		t.Fatalf("run %s", run.State)
	}
	for _, ti := range tis {
		switch ti.TaskID {
		case "write-xcom":
			if h := b.history(ti); !strings.Contains(h, "running,deferred,queued,running,success") {
				t.Errorf("write-xcom's states %s: it did not pass through deferred", h)
			}
			log := b.log(ti)
			for _, want := range []string{"deferring", "deferred to a pod trigger", "resuming", "resumed"} {
				if !strings.Contains(log, want) {
					t.Errorf("write-xcom's log lacks %q:\n%s", want, log)
				}
			}
		case "pod_task_xcom_result":
			if log := b.log(ti); !strings.Contains(log, "[stdout] 1\n") {
				t.Errorf("pod_task_xcom_result's log lacks the XCom value 1:\n%s", log)
			}
		}
	}
}

// podInterval is when a pod's base container ran, from the pod's own status.
func (b *testBundle) podIntervals(t *testing.T, dagID string) [][2]time.Time {
	pods, err := b.client.CoreV1().Pods(b.ns).List(b.ctx, metav1.ListOptions{LabelSelector: "dag_id=" + dagID})
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]time.Time
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "base" && cs.State.Terminated != nil {
				out = append(out, [2]time.Time{cs.State.Terminated.StartedAt.Time, cs.State.Terminated.FinishedAt.Time})
			}
		}
	}
	return out
}

// With one worker slot, ten deferrable pods that sleep 5 s run at the same
// time (the slot is freed while they are deferred); without deferrable they
// run one after another.
func TestDeferralLetsPodsOverlapOnOneWorker(t *testing.T) {
	b := setup(t).withCluster()
	src := func(id string, deferrable bool) string {
		s := "dag_id: " + id + "\nmax_active_tasks: 50\ntasks:\n"
		for i := 0; i < 10; i++ {
			extra := ""
			if deferrable {
				extra = "    deferrable: true\n"
			}
			s += b.podTask(fmt.Sprintf("p%d", i), "sleep 5", extra)
		}
		return s
	}
	deferred := b.writeDAG("overlap", src("overlap", true))
	b.scheduler(1)
	b.triggerer(100, 2*time.Second)
	if run, _ := b.waitRunTasks("overlap", b.trigger(deferred), 3*time.Minute); run.State != runstate.RunSuccess {
		t.Fatalf("deferrable run %s", run.State)
	}
	iv := b.podIntervals(t, "overlap")
	if len(iv) != 10 {
		t.Fatalf("%d finished pods, want 10", len(iv))
	}
	latestStart, earliestEnd := iv[0][0], iv[0][1]
	for _, x := range iv {
		if x[0].After(latestStart) {
			latestStart = x[0]
		}
		if x[1].Before(earliestEnd) {
			earliestEnd = x[1]
		}
	}
	if !latestStart.Before(earliestEnd) {
		t.Errorf("deferrable pods did not all run at once: last start %s, first end %s", latestStart, earliestEnd)
	}

	sync := b.writeDAG("serial", src("serial", false))
	if run, _ := b.waitRunTasks("serial", b.trigger(sync), 5*time.Minute); run.State != runstate.RunSuccess {
		t.Fatalf("synchronous run %s", run.State)
	}
	iv = b.podIntervals(t, "serial")
	sort.Slice(iv, func(i, j int) bool { return iv[i][0].Before(iv[j][0]) })
	for i := 1; i < len(iv); i++ {
		if iv[i][0].Before(iv[i-1][1]) {
			t.Errorf("synchronous pods overlapped on one worker slot: %v then %v", iv[i-1], iv[i])
		}
	}
}

func manyDeferred(b *testBundle, n int, cmd string) string {
	s := "dag_id: many\nmax_active_tasks: 100\ntasks:\n"
	for i := 0; i < n; i++ {
		s += b.podTask(fmt.Sprintf("p%d", i), cmd, "    deferrable: true\n    startup_timeout_seconds: 5\n")
	}
	return s
}

func (b *testBundle) waitTriggers(n int) {
	b.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := b.store.TriggerCount(b.ctx)
		if err != nil {
			b.t.Fatal(err)
		}
		if c >= n {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%d triggers, want %d", c, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func assertEachResumedOnce(t *testing.T, b *testBundle, tis []store.TaskInstance) {
	t.Helper()
	for _, ti := range tis {
		h := b.history(ti)
		if strings.Count(h, "deferred,queued") != 1 || ti.State != runstate.Success {
			t.Errorf("%s: state %s, history %s, error %q: want resumed exactly once, then success", ti.TaskID, ti.State, h, ti.Error)
		}
		if strings.Contains(ti.Error, "StartupTimeout") || strings.Contains(b.log(ti), "startup timeout") {
			t.Errorf("%s was timed out for startup", ti.TaskID)
		}
	}
}

// kill -9 the only triggerer while 20 pods are deferred, then start another:
// all 20 tasks resume and succeed, none with a startup timeout, none twice.
// (The pods keep running for longer than their 5 s startup timeout while no
// triggerer runs.)
func TestTriggererKilledTasksResumeOnAnother(t *testing.T) {
	b := setup(t).withCluster()
	d := b.writeDAG("many", manyDeferred(b, 20, "sleep 8"))
	b.scheduler(20)
	victim := b.triggererProcess()
	runID := b.trigger(d)
	b.waitTriggers(20)
	deadline := time.Now().Add(time.Minute)
	for { // the victim owns them all
		owned, _ := b.store.Pool.Query(b.ctx, `SELECT count(*) FROM triggers WHERE owner_id IS NOT NULL`)
		var n int
		for owned.Next() {
			_ = owned.Scan(&n)
		}
		owned.Close()
		if n == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("victim owns %d triggers", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // past the pods' startup timeout, with no triggerer alive
	b.triggerer(100, 2*time.Second)
	run, tis := b.waitRunTasks("many", runID, 3*time.Minute)
	if run.State != runstate.RunSuccess {
		t.Errorf("run %s", run.State)
	}
	assertEachResumedOnce(t, b, tis)
}

// A pod that completes while no triggerer runs resumes as soon as one starts.
func TestPodFinishedWhileNoTriggererResumes(t *testing.T) {
	b := setup(t).withCluster()
	d := b.writeDAG("many", manyDeferred(b, 1, "echo done"))
	b.scheduler(2)
	runID := b.trigger(d)
	b.waitTriggers(1)
	deadline := time.Now().Add(time.Minute)
	for {
		pods, err := b.client.CoreV1().Pods(b.ns).List(b.ctx, metav1.ListOptions{LabelSelector: "dag_id=many"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 1 && baseTerminated(&pods.Items[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod did not finish")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	b.triggerer(10, 2*time.Second)
	run, tis := b.waitRunTasks("many", runID, time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s", run.State)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("resumed %s after the triggerer started", took)
	}
	assertEachResumedOnce(t, b, tis)
}

func baseTerminated(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == "base" && cs.State.Terminated != nil {
			return true
		}
	}
	return false
}

// Two triggerers with capacity 10 share 20 pod triggers; every task resumes
// exactly once.
func TestTwoTriggerersSharePodTriggers(t *testing.T) {
	b := setup(t).withCluster()
	d := b.writeDAG("many", manyDeferred(b, 20, "sleep 6"))
	b.scheduler(20)
	t1, _ := b.triggerer(10, 2*time.Second)
	t2, _ := b.triggerer(10, 2*time.Second)
	runID := b.trigger(d)
	deadline := time.Now().Add(2 * time.Minute)
	for t1.Running()+t2.Running() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("running %d + %d", t1.Running(), t2.Running())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if t1.Running() != 10 || t2.Running() != 10 {
		t.Errorf("split %d/%d, want 10/10", t1.Running(), t2.Running())
	}
	run, tis := b.waitRunTasks("many", runID, 3*time.Minute)
	if run.State != runstate.RunSuccess {
		t.Errorf("run %s", run.State)
	}
	assertEachResumedOnce(t, b, tis)
}

// A pod deleted by someone else while its task is deferred fails the task
// with "pod deleted".
func TestPodDeletedWhileDeferred(t *testing.T) {
	b := setup(t).withCluster()
	d := b.writeDAG("gone", "dag_id: gone\ntasks:\n"+b.podTask("victim", "sleep 60", "    deferrable: true\n"))
	b.scheduler(2)
	b.triggerer(10, 2*time.Second)
	runID := b.trigger(d)
	b.waitTriggers(1)
	var pod corev1.Pod
	deadline := time.Now().Add(time.Minute)
	for {
		pods, err := b.client.CoreV1().Pods(b.ns).List(b.ctx, metav1.ListOptions{LabelSelector: "dag_id=gone"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 1 && pods.Items[0].Status.Phase == corev1.PodRunning {
			pod = pods.Items[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}
	zero := int64(0)
	if err := b.client.CoreV1().Pods(b.ns).Delete(b.ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	run, tis := b.waitRunTasks("gone", runID, time.Minute)
	if run.State != runstate.RunFailed {
		t.Fatalf("run %s, want failed", run.State)
	}
	if !strings.Contains(tis[0].Error, "pod deleted") {
		t.Errorf("error %q does not say pod deleted", tis[0].Error)
	}
}

// Given a pod task with execution_timeout 6 s whose pod sleeps 120 s (and
// on_finish_action: keep_pod), when the timeout passes, then the task fails
// on time and its pod is deleted: a timed-out task's pod never outlives it,
// whether the task waited in a worker or deferred to the triggerer.
func TestTimedOutPodTaskDeletesItsPod(t *testing.T) {
	for _, deferrable := range []bool{true, false} {
		t.Run(fmt.Sprintf("deferrable=%v", deferrable), func(t *testing.T) {
			b := setup(t).withCluster()
			extra := "    execution_timeout: 6s\n"
			if deferrable {
				extra += "    deferrable: true\n"
			}
			d := b.writeDAG("timeout", "dag_id: timeout\ntasks:\n"+b.podTask("sleeper", "sleep 120", extra))
			b.scheduler(2)
			b.triggerer(10, 2*time.Second)
			run, tis := b.waitRunTasks("timeout", b.trigger(d), time.Minute)
			ti := tis[0]
			if run.State != runstate.RunFailed || ti.State != runstate.Failed {
				t.Fatalf("run %s, task %s (%s); want both failed", run.State, ti.State, ti.Error)
			}
			if !strings.Contains(ti.Error, "execution_timeout") {
				t.Errorf("error %q does not name execution_timeout", ti.Error)
			}
			if took := ti.EndedAt.Sub(*ti.StartedAt); took > 6*time.Second+10*time.Second {
				t.Errorf("the task failed %s after it started, want about 6 s", took.Round(time.Millisecond))
			}
			if ti.ExternalName == "" {
				t.Fatal("no pod recorded on the task instance")
			}
			if deferrable && !strings.Contains(b.history(ti), "deferred") {
				t.Errorf("history %s: the task never deferred", b.history(ti))
			}
			// Then: the pod is gone or terminating, by the Kubernetes API.
			deadline := time.Now().Add(15 * time.Second)
			for {
				p, err := b.client.CoreV1().Pods(ti.ExternalNS).Get(b.ctx, ti.ExternalName, metav1.GetOptions{})
				if apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if time.Now().After(deadline) {
					t.Fatalf("pod %s/%s still %s (not terminating) 15 s after its task timed out; task log:\n%s",
						p.Namespace, p.Name, p.Status.Phase, b.log(ti))
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}
