package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/operators"
)

// End-to-end tests: the operator's Execute against a real cluster (the local
// cluster unless KUBECONFIG is set), each test in its own namespace.

// TestMain runs the tests, then stops the test cluster and the trigger
// benchmark's database; run again by the benchmark, the binary is its
// triggerer process instead.
func TestMain(m *testing.M) {
	os.Exit(flowtest.Main(m, map[string]func(*flowtest.Child) error{"bench-triggerer": runBenchTriggerer}, kubetest.Stop))
}

type e2eBundle struct {
	kubeconfig string
	ns         string
	client     kubernetes.Interface
	op         *Operator
}

func setupE2E(t *testing.T) *e2eBundle {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test on a Kubernetes cluster (not in -short mode)")
	}
	return &e2eBundle{
		kubeconfig: kubetest.Kubeconfig(t),
		ns:         kubetest.Namespace(t),
		client:     kubetest.Client(t),
		op:         New(WithClients(kube.NewClients())),
	}
}

// task is one try of a pod task run through Execute.
type task struct {
	b    *e2eBundle
	tc   *operators.TaskContext
	log  *flowtest.Log
	kit  *flowtest.Task // records SetExternalID
	opts string
}

// newTask makes a task from inline options; namespace and config_file point
// at the test's cluster and namespace.
func (b *e2eBundle) newTask(t *testing.T, id, opts string) *task {
	t.Helper()
	src := fmt.Sprintf("namespace: %s\nconfig_file: %s\n%s", b.ns, b.kubeconfig, opts)
	kit := flowtest.NewTask(&dag.DAG{ID: "e2e"}, parseTask(t, id, src))
	return &task{b: b, tc: kit.TC, log: kit.Log, kit: kit, opts: src}
}

func (tk *task) execute(t *testing.T, timeout time.Duration) (*operators.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := tk.b.op.Execute(ctx, tk.tc)
	t.Logf("task log:\n%s", tk.log)
	return res, err
}

// pods lists the pods of the task's try by its labels (kept or not).
func (tk *task) pods(t *testing.T) []corev1.Pod {
	t.Helper()
	sel := fmt.Sprintf("%s=%s,%s=%s", LabelDagID, "e2e", LabelTaskID, SafeLabelValue(tk.tc.Task.ID))
	list, err := tk.b.client.CoreV1().Pods(tk.b.ns).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatalf("list pods: %v", err)
	}
	return list.Items
}

// livePods are the task's pods not being deleted.
func (tk *task) livePods(t *testing.T) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range tk.pods(t) {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// waitFor polls cond (every 50 ms) until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

const writeXCom = `image: alpine
cmds: ["sh", "-c", "echo hello from the pod; mkdir -p /airflow/xcom/;echo '[1,2,3,4]' > /airflow/xcom/return.json"]
do_xcom_push: true
`

func TestE2EWriteXCom(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "write-xcom", writeXCom)
	res, err := tk.execute(t, 2*time.Minute)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	got, _ := json.Marshal(res.XCom["return_value"])
	if string(got) != "[1,2,3,4]" {
		t.Errorf("return_value = %s, want [1,2,3,4]", got)
	}
	if res.XCom["pod_namespace"] != b.ns || !strings.HasPrefix(fmt.Sprint(res.XCom["pod_name"]), "write-xcom-") {
		t.Errorf("pod XComs = %v", res.XCom)
	}
	expect(t, "base log", tk.log.SourceLines("base"), []string{"hello from the pod"})
	if ids := tk.kit.ExternalIDs(); len(ids) != 1 || ids[0] != b.ns+"/"+fmt.Sprint(res.XCom["pod_name"]) {
		t.Errorf("SetExternalID calls = %v", ids)
	}
	if live := tk.livePods(t); len(live) != 0 {
		t.Errorf("pod not deleted (on_finish_action delete_pod): %d live", len(live))
	}
}

func TestE2EExitCode(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "exit-3", `image: alpine
cmds: ["sh", "-c", "echo about to fail; echo 'it broke' > /dev/termination-log; exit 3"]
log_events_on_failure: true
`)
	_, err := tk.execute(t, 2*time.Minute)
	if err == nil || !strings.Contains(err.Error(), "exit code 3") {
		t.Fatalf("err = %v, want exit code 3", err)
	}
	if operators.IsSkip(err) {
		t.Errorf("exit 3 without skip_on_exit_code skipped")
	}
}

func TestE2ESkipOnExitCode(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "skip-3", `image: alpine
cmds: ["sh", "-c", "exit 3"]
skip_on_exit_code: [3]
`)
	_, err := tk.execute(t, 2*time.Minute)
	if !operators.IsSkip(err) {
		t.Fatalf("err = %v, want a skip", err)
	}
}

func TestE2EImagePullFails(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "pull", `image: busybox:missing
cmds: ["true"]
startup_timeout_seconds: 60
`)
	start := time.Now()
	_, err := tk.execute(t, 2*time.Minute)
	if err == nil || !strings.Contains(err.Error(), "ErrImagePull") && !strings.Contains(err.Error(), "ImagePullBackOff") {
		t.Fatalf("err = %v, want ErrImagePull", err)
	}
	if elapsed := time.Since(start); elapsed > 60*time.Second {
		t.Errorf("failed after %s, not within the startup timeout", elapsed)
	}
	if live := tk.livePods(t); len(live) != 0 {
		t.Errorf("pod not deleted: %d live", len(live))
	}
}

// TestE2ERefusedXCom: a return.json that is not JSON fails the task quoting
// its first bytes; a 64 MiB one is refused by its size (only the limit plus
// one byte ever leaves the sidecar). Either way the pod is cleaned up.
func TestE2ERefusedXCom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, write string
		want        []string
	}{
		{"bad-json", "echo '{not json' > /airflow/xcom/return.json", []string{"invalid JSON", "{not json"}},
		{"big-xcom", "head -c 67108864 /dev/zero | tr '\\\\0' 1 > /airflow/xcom/return.json", []string{"over the XCom limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupE2E(t)
			tk := b.newTask(t, tt.name, "image: alpine\ncmds: [\"sh\", \"-c\", \"mkdir -p /airflow/xcom; "+tt.write+"\"]\ndo_xcom_push: true\n")
			_, err := tk.execute(t, 2*time.Minute)
			for _, want := range tt.want {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("err = %v, want %q", err, want)
				}
			}
			if live := tk.livePods(t); len(live) != 0 {
				t.Errorf("pod not cleaned up: %d live", len(live))
			}
		})
	}
}

func TestE2EEmptyXCom(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "no-xcom", `image: alpine
cmds: ["sh", "-c", "echo nothing to return"]
do_xcom_push: true
`)
	res, err := tk.execute(t, 2*time.Minute)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if _, ok := res.XCom["return_value"]; ok {
		t.Errorf("missing return.json gave a value: %v", res.XCom)
	}
}

func TestE2EOnFinishAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		action   string
		exitCode int
		kept     bool
	}{
		{"delete_pod", 0, false},
		{"delete_pod", 1, false},
		{"delete_succeeded_pod", 0, false},
		{"delete_succeeded_pod", 1, true},
		{"delete_active_pod", 0, true},
		{"keep_pod", 0, true},
		{"keep_pod", 1, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s exit %d", tt.action, tt.exitCode), func(t *testing.T) {
			t.Parallel()
			b := setupE2E(t)
			tk := b.newTask(t, "finish", fmt.Sprintf(`image: alpine
cmds: ["sh", "-c", "exit %d"]
do_xcom_push: true
on_finish_action: %s
`, tt.exitCode, tt.action))
			_, err := tk.execute(t, 2*time.Minute)
			if (err == nil) != (tt.exitCode == 0) {
				t.Fatalf("err = %v", err)
			}
			live := tk.livePods(t)
			if tt.kept != (len(live) == 1) {
				t.Fatalf("live pods = %d, want kept %v", len(live), tt.kept)
			}
			if !tt.kept {
				return
			}
			if live[0].Labels[LabelAlreadyCheck] != "True" {
				t.Errorf("kept pod is not marked %s", LabelAlreadyCheck)
			}
			// The sidecar was stopped, so the kept pod finishes.
			waitFor(t, 30*time.Second, "kept pod to finish", func() bool {
				p, err := b.client.CoreV1().Pods(b.ns).Get(context.Background(), live[0].Name, metav1.GetOptions{})
				return err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed)
			})
		})
	}
}

// TestE2EReattach: a worker died after creating its pod; the next Execute of
// the same try follows that pod instead of creating a second one.
func TestE2EReattach(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	opts := `image: alpine
cmds: ["sh", "-c", "sleep 1; echo done"]
on_finish_action: keep_pod
`
	first := b.newTask(t, "reattach", opts)
	pod, err := b.op.Plan(context.Background(), first.tc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.CoreV1().Pods(b.ns).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := b.newTask(t, "reattach", opts)
	res, err := second.execute(t, 2*time.Minute)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if res.XCom["pod_name"] != pod.Name {
		t.Errorf("followed pod %v, want the existing %s", res.XCom["pod_name"], pod.Name)
	}
	if !strings.Contains(second.log.String(), "re-attaching to pod") {
		t.Errorf("log does not say it re-attached")
	}
	if n := len(second.pods(t)); n != 1 {
		t.Errorf("%d pods with the try's labels, want exactly 1", n)
	}

	// The kept pod is marked already_checked: a rerun of the same try
	// creates a new pod instead of reading the old result.
	third := b.newTask(t, "reattach", opts)
	res, err = third.execute(t, 2*time.Minute)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if res.XCom["pod_name"] == pod.Name {
		t.Errorf("rerun re-attached to the finished, kept pod")
	}
}

func TestE2EScheduleTimeout(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "unschedulable", `image: alpine
cmds: ["true"]
node_selector: {no-such-label: "x"}
schedule_timeout_seconds: 3
`)
	start := time.Now()
	_, err := tk.execute(t, 2*time.Minute)
	if err == nil || !strings.Contains(err.Error(), "schedule timeout") {
		t.Fatalf("err = %v, want the schedule timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("schedule timeout of 3s took %s", elapsed)
	}
}

// startAndWaitRunning runs the task in the background and returns once its
// base container runs.
func startAndWaitRunning(t *testing.T, ctx context.Context, tk *task) (<-chan error, string) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := tk.b.op.Execute(ctx, tk.tc)
		errc <- err
	}()
	var name string
	waitFor(t, time.Minute, "base container running", func() bool {
		ids := tk.kit.ExternalIDs()
		if len(ids) == 0 {
			return false
		}
		name = strings.SplitN(ids[0], "/", 2)[1]
		p, err := tk.b.client.CoreV1().Pods(tk.b.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		s := containerStatus(p.Status.ContainerStatuses, BaseContainerName)
		return s != nil && s.State.Running != nil
	})
	return errc, name
}

func TestE2EPodDeletedMidTask(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "deleted", `image: alpine
cmds: ["sh", "-c", "sleep 60"]
do_xcom_push: true
`)
	errc, name := startAndWaitRunning(t, context.Background(), tk)
	zero := int64(0)
	if err := b.client.CoreV1().Pods(b.ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "pod deleted") {
			t.Fatalf("err = %v, want pod deleted", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("task did not end after its pod was deleted")
	}
}

// TestE2EKilled: the task's context ends (execution_timeout, SIGTERM): the
// pod is deleted.
func TestE2EKilled(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "killed", `image: alpine
cmds: ["sh", "-c", "sleep 60"]
termination_grace_period: 1
on_finish_action: keep_pod
`)
	ctx, cancel := context.WithCancel(context.Background())
	errc, name := startAndWaitRunning(t, ctx, tk)
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("killed task succeeded")
		}
	case <-time.After(time.Minute):
		t.Fatal("task did not end after its context was cancelled")
	}
	waitFor(t, 30*time.Second, "pod deleted", func() bool {
		p, err := b.client.CoreV1().Pods(b.ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil)
	})
}

// TestE2ELogsResume: many lines, every one in the task log once, in order.
func TestE2ELogs(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "logs", `image: alpine
cmds: ["sh", "-c", "i=1; while [ $i -le 300 ]; do echo line $i; i=$((i+1)); done"]
`)
	if _, err := tk.execute(t, 2*time.Minute); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	lines := tk.log.SourceLines("base")
	if len(lines) != 300 || lines[0] != "line 1" || lines[299] != "line 300" {
		t.Errorf("got %d lines (first %q), want line 1 … line 300", len(lines), strings.Join(lines[:min(3, len(lines))], ","))
	}
}

// TestE2EDeferrable: Execute launches the pod and defers; Resume with the
// trigger's event finishes the task (the triggerer is simulated by waiting
// with EvaluatePod).
func TestE2EDeferrable(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := b.newTask(t, "deferred", writeXCom+"deferrable: true\n")
	res, err := tk.execute(t, time.Minute)
	if err != nil || res.Deferral == nil {
		t.Fatalf("Execute = %+v, %v; want a deferral", res, err)
	}
	var args TriggerArgs
	if err := json.Unmarshal(res.Deferral.Args, &args); err != nil {
		t.Fatal(err)
	}
	expect(t, "trigger kind", res.Deferral.Kind, TriggerKind)
	var ev PodEvent
	waitFor(t, time.Minute, "pod done", func() bool {
		p, err := b.client.CoreV1().Pods(args.Namespace).Get(context.Background(), args.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		var done bool
		done, ev = EvaluatePod(p, time.Now(), args.Timeouts())
		return done
	})
	event, err := podTriggerEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	resumed := b.newTask(t, "deferred", writeXCom+"deferrable: true\n")
	res, err = b.op.Resume(context.Background(), resumed.tc, res.Deferral.Method, event)
	t.Logf("resumed log:\n%s", resumed.log)
	if err != nil {
		t.Fatalf("Resume: %v", err)
	}
	got, _ := json.Marshal(res.XCom["return_value"])
	expect(t, "return_value", string(got), "[1,2,3,4]")
	expect(t, "base log", resumed.log.SourceLines("base"), []string{"hello from the pod"})
}

// TestE2EResumeStopsThePod: a deferred task resumed with a timeout event, or
// resumed after its own deadline, deletes its pod (keep_pod
// notwithstanding); an error event from the triggerer itself fails the task
// with its message and applies on_finish_action.
func TestE2EResumeStopsThePod(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		event      func(pe PodEvent) operators.Event
		ctxEnded   bool
		wantErr    string
		wantDelete bool
	}{
		{name: "timeout", event: func(PodEvent) operators.Event {
			return operators.Event{Status: operators.EventTimeout, Message: "trigger deadline passed"}
		}, wantErr: "timed out while deferred: trigger deadline passed", wantDelete: true},
		{name: "late success", event: func(pe PodEvent) operators.Event {
			ev, _ := podTriggerEvent(PodEvent{Status: PodSucceeded, Namespace: pe.Namespace, Name: pe.Name, ExitCode: new(int32)})
			return ev
		}, ctxEnded: true, wantErr: "context deadline exceeded", wantDelete: true},
		{name: "triggerer error", event: func(PodEvent) operators.Event {
			return operators.ErrorEvent("cluster unreachable")
		}, wantErr: "cluster unreachable", wantDelete: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupE2E(t)
			opts := "image: alpine\ncmds: [\"sh\", \"-c\", \"sleep 120\"]\ndeferrable: true\non_finish_action: keep_pod\ntermination_grace_period: 1\n"
			tk := b.newTask(t, "stopped", opts)
			res, err := tk.execute(t, time.Minute)
			if err != nil || res.Deferral == nil {
				t.Fatalf("Execute = %+v, %v; want a deferral", res, err)
			}
			var args TriggerArgs
			if err := json.Unmarshal(res.Deferral.Args, &args); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Minute, "pod running", func() bool {
				p, err := b.client.CoreV1().Pods(args.Namespace).Get(context.Background(), args.Name, metav1.GetOptions{})
				return err == nil && p.Status.Phase == corev1.PodRunning
			})
			resumed := b.newTask(t, "stopped", opts)
			resumed.tc.ExternalNamespace, resumed.tc.ExternalName = args.Namespace, args.Name
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if tc.ctxEnded {
				var late context.CancelFunc
				ctx, late = context.WithDeadline(ctx, time.Now().Add(-time.Second))
				defer late()
			}
			_, err = b.op.Resume(ctx, resumed.tc, res.Deferral.Method, tc.event(PodEvent{Namespace: args.Namespace, Name: args.Name}))
			t.Logf("resumed log:\n%s", resumed.log)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Resume error %v, want %q", err, tc.wantErr)
			}
			p, err := b.client.CoreV1().Pods(args.Namespace).Get(context.Background(), args.Name, metav1.GetOptions{})
			deleted := apierrors.IsNotFound(err) || (err == nil && p.DeletionTimestamp != nil)
			if deleted != tc.wantDelete {
				t.Errorf("pod deleted = %v, want %v (get: %v)", deleted, tc.wantDelete, err)
			}
		})
	}
}
