package triggerer_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/triggerer"
	"github.com/podflow/podflow/operators/builtin"
)

// Pod tasks through the scheduler and the triggerer on the test cluster.

// runChildTriggerer is a triggerer process (to kill -9 it).
func runChildTriggerer(c *flowtest.Child) error {
	threshold, err := time.ParseDuration(c.Env("THRESHOLD"))
	if err != nil {
		return err
	}
	ops := builtin.Registry(builtin.Deps{Clients: kube.NewClients()})
	t := triggerer.New(c.Store, ops.Triggers(), triggerer.Config{Capacity: 100, HeartbeatThreshold: threshold,
		PollInterval: 100 * time.Millisecond, Logger: c.Logger})
	c.Ready(t.ID())
	return t.Run(c.Ctx)
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

// The seed's deferrable write-xcom → bash xcom_pull DAG succeeds through the
// scheduler and the triggerer; the pod task passed through deferred.
func TestDeferrableWriteXCom(t *testing.T) {
	t.Parallel()
	b := setup(t).withCluster()
	b.DAG("xcom_async", "dag_id: xcom_async\ntasks:\n"+
		b.podTask("write-xcom", "sleep 1; mkdir -p /airflow/xcom/; echo '[1,2,3,4]' > /airflow/xcom/return.json", "    do_xcom_push: true\n    deferrable: true\n")+
		"  - task_id: pod_task_xcom_result\n    operator: bash\n    upstream: [write-xcom]\n    bash_command: echo \"{{ task_instance.xcom_pull('write-xcom')[0] }}\"\n")
	b.Scheduler(workers(4))
	b.Triggerer(limits(100, 2*time.Second))
	run, tis := b.waitRunTasks("xcom_async", b.Trigger("xcom_async", ""), 2*time.Minute)
	if run.State != runstate.RunSuccess {
		for _, ti := range tis {
			t.Logf("%s %s %s\n%s", ti.TaskID, ti.State, ti.Error, b.TryLog(ti, ti.TryNumber))
		}
		t.Fatalf("run %s", run.State)
	}
	for _, ti := range tis {
		switch ti.TaskID {
		case "write-xcom":
			if h := b.History(ti); !strings.Contains(h, "running,deferred,queued,running,success") {
				t.Errorf("write-xcom's states %s: it did not pass through deferred", h)
			}
			log := b.TryLog(ti, ti.TryNumber)
			for _, want := range []string{"deferring", "deferred to a pod trigger", "resuming", "resumed"} {
				if !strings.Contains(log, want) {
					t.Errorf("write-xcom's log lacks %q:\n%s", want, log)
				}
			}
		case "pod_task_xcom_result":
			if log := b.TryLog(ti, ti.TryNumber); !strings.Contains(log, "[stdout] 1\n") {
				t.Errorf("pod_task_xcom_result's log lacks the XCom value 1:\n%s", log)
			}
		}
	}
}

// podInterval is when a pod's base container ran, from the pod's own status.
func (b *testBundle) podIntervals(t *testing.T, dagID string) [][2]time.Time {
	pods, err := b.client.CoreV1().Pods(b.ns).List(b.Ctx, metav1.ListOptions{LabelSelector: "dag_id=" + dagID})
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
// run one after another. (Three synchronous pods of 3 s show that: started
// together, as deferred ones are, they would overlap.)
func TestDeferralLetsPodsOverlapOnOneWorker(t *testing.T) {
	t.Parallel()
	b := setup(t).withCluster()
	src := func(id string, n int, sleep string, deferrable bool) string {
		s := "dag_id: " + id + "\nmax_active_tasks: 50\ntasks:\n"
		for i := 0; i < n; i++ {
			extra := ""
			if deferrable {
				extra = "    deferrable: true\n"
			}
			s += b.podTask(fmt.Sprintf("p%d", i), sleep, extra)
		}
		return s
	}
	b.DAG("overlap", src("overlap", 10, "sleep 5", true))
	b.Scheduler(workers(1))
	b.Triggerer(limits(100, 2*time.Second))
	if run, _ := b.waitRunTasks("overlap", b.Trigger("overlap", ""), 3*time.Minute); run.State != runstate.RunSuccess {
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

	b.DAG("serial", src("serial", 3, "sleep 3", false))
	if run, _ := b.waitRunTasks("serial", b.Trigger("serial", ""), 5*time.Minute); run.State != runstate.RunSuccess {
		t.Fatalf("synchronous run %s", run.State)
	}
	iv = b.podIntervals(t, "serial")
	if len(iv) != 3 {
		t.Fatalf("%d finished synchronous pods, want 3", len(iv))
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i][0].Before(iv[j][0]) })
	for i := 1; i < len(iv); i++ {
		if iv[i][0].Before(iv[i-1][1]) {
			t.Errorf("synchronous pods overlapped on one worker slot: %v then %v", iv[i-1], iv[i])
		}
	}
}

// manyDeferred is a DAG of n deferrable pod tasks running cmd, with a
// startup timeout (seconds) long enough for n pods starting at once.
func manyDeferred(b *testBundle, n int, cmd string, startup int) string {
	s := "dag_id: many\nmax_active_tasks: 100\ntasks:\n"
	for i := 0; i < n; i++ {
		s += b.podTask(fmt.Sprintf("p%d", i), cmd, fmt.Sprintf("    deferrable: true\n    startup_timeout_seconds: %d\n", startup))
	}
	return s
}

func (b *testBundle) waitTriggers(n int) {
	b.T.Helper()
	b.WaitFor(fmt.Sprintf("%d triggers", n), 2*time.Minute, func() bool {
		c, err := b.Store.TriggerCount(b.Ctx)
		if err != nil {
			b.T.Fatal(err)
		}
		return c >= n
	})
}

func assertEachResumedOnce(t *testing.T, b *testBundle, tis []store.TaskInstance) {
	t.Helper()
	for _, ti := range tis {
		h := b.History(ti)
		if strings.Count(h, "deferred,queued") != 1 || ti.State != runstate.Success {
			t.Errorf("%s: state %s, history %s, error %q: want resumed exactly once, then success", ti.TaskID, ti.State, h, ti.Error)
		}
		if strings.Contains(ti.Error, "StartupTimeout") || strings.Contains(b.TryLog(ti, ti.TryNumber), "startup timeout") {
			t.Errorf("%s was timed out for startup", ti.TaskID)
		}
	}
}

// kill -9 the only triggerer while 20 pods are deferred, then start another:
// all 20 tasks resume and succeed, none with a startup timeout, none twice.
// (The pods keep running for longer than their 15 s startup timeout while
// no triggerer runs: it is judged from the pods' own conditions.)
func TestTriggererKilledTasksResumeOnAnother(t *testing.T) {
	t.Parallel()
	b := setup(t).withCluster()
	b.DAG("many", manyDeferred(b, 20, "sleep 20", 15))
	b.Scheduler(workers(20))
	victim := b.StartChild("triggerer", "THRESHOLD=2s")
	runID := b.Trigger("many", "")
	b.waitTriggers(20)
	b.WaitFor("the victim owns all 20 triggers", time.Minute, func() bool {
		var n int
		if err := b.Store.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM triggers WHERE owner_id IS NOT NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 20
	})
	victim.Kill()
	// No triggerer is alive until every pod has run past its startup
	// timeout, counted from its own creation.
	pods := flowtest.WaitPods(t, b.client, b.ns, "dag_id=many", time.Minute, func(pods []corev1.Pod) bool {
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 20
	})
	var lastCreated time.Time
	for _, p := range pods {
		if c := p.CreationTimestamp.Time; c.After(lastCreated) {
			lastCreated = c
		}
	}
	time.Sleep(time.Until(lastCreated.Add(15*time.Second + time.Second))) // the API's timestamps have 1 s resolution
	b.Triggerer(limits(100, 2*time.Second))
	run, tis := b.waitRunTasks("many", runID, 3*time.Minute)
	if run.State != runstate.RunSuccess {
		t.Errorf("run %s", run.State)
	}
	assertEachResumedOnce(t, b, tis)
}

// A pod that completes while no triggerer runs resumes as soon as one starts.
func TestPodFinishedWhileNoTriggererResumes(t *testing.T) {
	t.Parallel()
	b := setup(t).withCluster()
	b.DAG("many", manyDeferred(b, 1, "echo done", 60))
	b.Scheduler(workers(2))
	runID := b.Trigger("many", "")
	b.waitTriggers(1)
	flowtest.WaitPods(t, b.client, b.ns, "dag_id=many", time.Minute, func(pods []corev1.Pod) bool {
		return len(pods) == 1 && baseTerminated(&pods[0])
	})
	start := time.Now()
	b.Triggerer(limits(10, 2*time.Second))
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
	t.Parallel()
	b := setup(t).withCluster()
	b.DAG("many", manyDeferred(b, 20, "sleep 6", 60)) // 20 pods start at once on 2 busy cores
	b.Scheduler(workers(20))
	t1 := b.Triggerer(limits(10, 2*time.Second))
	t2 := b.Triggerer(limits(10, 2*time.Second))
	runID := b.Trigger("many", "")
	b.WaitFor("20 triggers running", 2*time.Minute, func() bool { return t1.Running()+t2.Running() >= 20 })
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
	t.Parallel()
	b := setup(t).withCluster()
	b.DAG("gone", "dag_id: gone\ntasks:\n"+b.podTask("victim", "sleep 60", "    deferrable: true\n"))
	b.Scheduler(workers(2))
	b.Triggerer(limits(10, 2*time.Second))
	runID := b.Trigger("gone", "")
	b.waitTriggers(1)
	pod := flowtest.WaitPods(t, b.client, b.ns, "dag_id=gone", time.Minute, func(pods []corev1.Pod) bool {
		return len(pods) == 1 && pods[0].Status.Phase == corev1.PodRunning
	})[0]
	zero := int64(0)
	if err := b.client.CoreV1().Pods(b.ns).Delete(b.Ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
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
	t.Parallel()
	for _, deferrable := range []bool{true, false} {
		t.Run(fmt.Sprintf("deferrable=%v", deferrable), func(t *testing.T) {
			t.Parallel()
			b := setup(t).withCluster()
			extra := "    execution_timeout: 6s\n"
			if deferrable {
				extra += "    deferrable: true\n"
			}
			b.DAG("timeout", "dag_id: timeout\ntasks:\n"+b.podTask("sleeper", "sleep 120", extra))
			b.Scheduler(workers(2))
			b.Triggerer(limits(10, 2*time.Second))
			run, tis := b.waitRunTasks("timeout", b.Trigger("timeout", ""), time.Minute)
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
			if deferrable && !strings.Contains(b.History(ti), "deferred") {
				t.Errorf("history %s: the task never deferred", b.History(ti))
			}
			// Then: the pod is gone or terminating, by the Kubernetes API.
			flowtest.WaitPods(t, b.client, ti.ExternalNS, "dag_id=timeout", 15*time.Second, func(pods []corev1.Pod) bool {
				for _, p := range pods {
					if p.Name == ti.ExternalName && p.DeletionTimestamp == nil {
						return false // still there, not terminating
					}
				}
				return true
			})
		})
	}
}

// A triggerer that finds its trigger owned by another (it missed
// heartbeats and was taken over) stops it without deleting the pod: the
// pod belongs to the new owner's wait now. Only a trigger whose row is gone
// (task cleared or killed) cleans up.
func TestTakenOverPodTriggerKeepsItsPod(t *testing.T) {
	t.Parallel()
	b := setup(t).withCluster()
	b.DAG("taken", "dag_id: taken\ntasks:\n"+b.podTask("survivor", "sleep 8", "    deferrable: true\n"))
	b.Scheduler(workers(2))
	tr := b.Triggerer(limits(10, time.Hour))
	runID := b.Trigger("taken", "")
	b.waitTriggers(1)
	b.WaitFor("the triggerer runs the trigger", time.Minute, func() bool { return tr.Running() == 1 })
	// Another triggerer, alive, takes the trigger over.
	if err := b.Store.Heartbeat(b.Ctx, "other-triggerer", "triggerer", "elsewhere", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Store.Pool.Exec(b.Ctx, `UPDATE triggers SET owner_id = 'other-triggerer'`); err != nil {
		t.Fatal(err)
	}
	b.WaitFor("the triggerer stops the trigger it no longer owns", time.Minute, func() bool { return tr.Running() == 0 })
	pods, err := b.client.CoreV1().Pods(b.ns).List(b.Ctx, metav1.ListOptions{LabelSelector: "dag_id=taken"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || pods.Items[0].DeletionTimestamp != nil {
		t.Fatalf("the pod of a taken-over trigger was deleted: %d pods", len(pods.Items))
	}
	// The other triggerer "dies": ours takes the trigger back and finishes.
	if _, err := b.Store.Pool.Exec(b.Ctx, `UPDATE heartbeats SET heartbeat_at = now() - interval '2 hours' WHERE id = 'other-triggerer'`); err != nil {
		t.Fatal(err)
	}
	run, tis := b.waitRunTasks("taken", runID, 2*time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s: %s", run.State, tis[0].Error)
	}
}

// With logging_interval, a deferred pod's log reaches the task log while the
// pod runs (the trigger fires progress events; each resume copies what is
// new and defers again), every line once, in order, stamped with the time
// the pod wrote it — and the triggerer still reads no logs itself.
func TestDeferredPodLogsArriveWhileItRuns(t *testing.T) {
	t.Parallel()
	b := setup(t).withCluster()
	b.DAG("chatty", "dag_id: chatty\ntasks:\n"+b.podTask("ticker",
		"i=1; while [ $i -le 8 ]; do echo tick $i; i=$((i+1)); sleep 1; done",
		"    deferrable: true\n    logging_interval: 1\n"))
	b.Scheduler(workers(2))
	b.Triggerer(limits(10, 2*time.Second))
	runID := b.Trigger("chatty", "")
	var seenWhileRunning string
	b.WaitFor("a tick in the log while the task is deferred", time.Minute, func() bool {
		tis := b.TIs("chatty", runID)
		if len(tis) == 0 {
			return false // the run is not started yet
		}
		ti := tis[0]
		if runstate.Done(ti.State) {
			t.Fatalf("the task ended (%s) before any of its pod's lines reached the log:\n%s", ti.State, b.TryLog(ti, ti.TryNumber))
		}
		log := b.TryLog(ti, ti.TryNumber)
		if strings.Contains(log, "[base] tick 2\n") {
			seenWhileRunning = log
			return true
		}
		return false
	})
	if strings.Contains(seenWhileRunning, "tick 8") {
		t.Errorf("the whole log arrived at once, not while the pod ran:\n%s", seenWhileRunning)
	}
	if state := b.WaitRun("chatty", runID, time.Minute); state != runstate.RunSuccess {
		t.Fatalf("run %s", state)
	}
	ti := b.TI("chatty", runID, "ticker")
	lines, err := b.Store.Logs(b.Ctx, ti.ID, ti.TryNumber, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ticks []string
	var first, last time.Time
	for _, l := range lines {
		if l.Source != "base" {
			continue
		}
		ticks = append(ticks, l.Line)
		if first.IsZero() {
			first = l.At
		}
		last = l.At
	}
	want := []string{"tick 1", "tick 2", "tick 3", "tick 4", "tick 5", "tick 6", "tick 7", "tick 8"}
	if strings.Join(ticks, "|") != strings.Join(want, "|") {
		t.Errorf("pod lines %q, want each tick once in order", ticks)
	}
	if d := last.Sub(first); d < 6*time.Second {
		t.Errorf("tick 1 and tick 8 stamped %s apart, want the pod's own ~7 s", d)
	}
	if h := b.History(ti); strings.Count(h, "deferred") < 2 {
		t.Errorf("states %s: the task deferred only once, so nothing was copied while the pod ran", h)
	}
	log := b.TryLog(ti, ti.TryNumber)
	t.Logf("task log:\n%s", log)
	if n := strings.Count(log, "task deferred to a pod trigger"); n != 1 {
		t.Errorf("the log says it deferred %d times; progress steps should not repeat it:\n%s", n, log)
	}
}
