package kubernetes

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/operators"
)

// Launcher tests on client-go's fake clientset: creation, re-attachment,
// the watch and the outcome. Logs and exec need a real cluster (e2e tests).

type fakeBundle struct {
	cs      *fake.Clientset
	r       *podRun
	log     *flowtest.Log
	mu      sync.Mutex
	records []string
}

func setupFake(t *testing.T, mut func(*PodOptions), objs ...*corev1.Pod) *fakeBundle {
	t.Helper()
	opts := baseOptions(func(o *PodOptions) {
		o.GetLogs = false
		o.Namespace = "ns"
		if mut != nil {
			mut(o)
		}
	})
	if opts.ScheduleTimeout == nil {
		opts.ScheduleTimeout = &opts.StartupTimeout
	}
	pod := build(t, BuildInput{Options: opts, DagID: "dag", TaskID: "task", RunID: "run", TryNumber: 1, NameSuffix: "new00000"})
	cs := fake.NewClientset()
	for _, o := range objs {
		if _, err := cs.CoreV1().Pods(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cs.ClearActions()
	// The fake API does not set creation timestamps, which timeouts count from.
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		pod.CreationTimestamp = metav1.NewTime(time.Now())
		return false, nil, nil
	})
	b := &fakeBundle{cs: cs, log: flowtest.NewLog()}
	tc := &operators.TaskContext{DAG: &dag.DAG{ID: "dag"}, Task: &dag.Task{ID: "task"}, RunID: "run", TryNumber: 1, Log: b.log,
		SetExternalID: func(_ context.Context, ns, name string) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.records = append(b.records, ns+"/"+name)
			return nil
		}}
	b.r = &podRun{tc: tc, plan: &plan{opts: opts, pod: pod}, client: cs, now: time.Now,
		ns: pod.Namespace, name: pod.Name, logs: map[string]*logFollower{}}
	return b
}

func (b *fakeBundle) verbs(resource string) []string {
	var out []string
	for _, a := range b.cs.Actions() {
		if a.GetResource().Resource == resource {
			out = append(out, a.GetVerb())
		}
	}
	return out
}

// existingPod is a pod of the same task try made by an earlier worker.
func existingPod(name string, created time.Time, labels map[string]string) *corev1.Pod {
	l := PodLabels("dag", "task", "run", 1, -1)
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: l,
		CreationTimestamp: metav1.NewTime(created)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Image: "alpine"}}}}
}

func TestLaunchCreatesAndRecords(t *testing.T) {
	t.Parallel()
	b := setupFake(t, nil)
	if err := b.r.launch(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, "pod calls", b.verbs("pods"), []string{"list", "create"})
	expect(t, "recorded", b.records, []string{"ns/task-new00000"})
}

// A try whose predecessor's worker died re-attaches to that try's pod
// (Airflow's find_pod ignores the try number too): never a second pod.
func TestLaunchReattachesAnEarlierTrysPod(t *testing.T) {
	t.Parallel()
	b := setupFake(t, nil, existingPod("task-try0", time.Now(), map[string]string{LabelTryNumber: "0"}))
	if err := b.r.launch(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, "followed", b.r.name, "task-try0")
	expect(t, "pod calls", b.verbs("pods"), []string{"list"})
}

func TestLaunchReattaches(t *testing.T) {
	t.Parallel()
	now := time.Now()
	b := setupFake(t, nil,
		existingPod("task-old00001", now.Add(-time.Minute), nil),
		existingPod("task-old00002", now, nil),
		existingPod("task-kept0000", now, map[string]string{LabelAlreadyCheck: "True"}),
		existingPod("other-run", now.Add(time.Second), map[string]string{LabelRunID: "run2"}),
	)
	if err := b.r.launch(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, "followed", b.r.name, "task-old00002")
	expect(t, "recorded", b.records, []string{"ns/task-old00002"})
	expect(t, "pod calls", b.verbs("pods"), []string{"list", "delete"}) // the extra, older pod
	if !strings.Contains(b.log.String(), "re-attaching to pod ns/task-old00002") {
		t.Errorf("log:\n%s", b.log)
	}
}

func TestLaunchReattachesToRecordedPod(t *testing.T) {
	t.Parallel()
	b := setupFake(t, nil, existingPod("task-rec00000", time.Now(), nil))
	b.r.tc.ExternalNamespace, b.r.tc.ExternalName = "ns", "task-rec00000"
	if err := b.r.launch(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, "followed", b.r.name, "task-rec00000")
	expect(t, "pod calls", b.verbs("pods"), []string{"get"})
}

func TestLaunchWithoutReattach(t *testing.T) {
	t.Parallel()
	b := setupFake(t, func(o *PodOptions) { o.ReattachOnRestart = false }, existingPod("task-old00001", time.Now(), nil))
	if err := b.r.launch(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, "pod calls", b.verbs("pods"), []string{"create"})
}

// runInBackground launches and runs the task, returning once its watch is open.
func (b *fakeBundle) runInBackground(t *testing.T) <-chan error {
	t.Helper()
	if err := b.r.launch(context.Background()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := b.r.runToEnd(context.Background())
		errc <- err
	}()
	waitFor(t, 5*time.Second, "watch", func() bool {
		for _, v := range b.verbs("pods") {
			if v == "watch" {
				return true
			}
		}
		return false
	})
	return errc
}

func (b *fakeBundle) setBaseState(t *testing.T, s corev1.ContainerState) {
	t.Helper()
	pod, err := b.cs.CoreV1().Pods("ns").Get(context.Background(), b.r.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Spec.NodeName = "node"
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", State: s}}
	if _, err := b.cs.CoreV1().Pods("ns").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func receive(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("task did not end")
		return nil
	}
}

func TestRunFailsWithExitCode(t *testing.T) {
	t.Parallel()
	b := setupFake(t, nil)
	errc := b.runInBackground(t)
	b.setBaseState(t, terminated(3, "Error", "it broke", time.Now()))
	err := receive(t, errc)
	if err == nil || !strings.Contains(err.Error(), "exit code 3") || !strings.Contains(err.Error(), "it broke") {
		t.Fatalf("err = %v", err)
	}
	if v := b.verbs("pods"); v[len(v)-1] != "delete" {
		t.Errorf("pod not deleted (delete_pod): %v", v)
	}
}

func TestRunSkipsOnExitCode(t *testing.T) {
	t.Parallel()
	b := setupFake(t, func(o *PodOptions) { o.SkipOnExitCode = ExitCodes{3}; o.OnFinishAction = DeleteSucceededPod })
	errc := b.runInBackground(t)
	b.setBaseState(t, terminated(3, "Error", "", time.Now()))
	if err := receive(t, errc); !operators.IsSkip(err) {
		t.Fatalf("err = %v, want skip", err)
	}
	if v := b.verbs("pods"); v[len(v)-1] != "patch" {
		t.Errorf("failed pod not kept and marked (delete_succeeded_pod): %v", v)
	}
}

func TestRunPodDeleted(t *testing.T) {
	t.Parallel()
	b := setupFake(t, nil)
	errc := b.runInBackground(t)
	b.setBaseState(t, corev1.ContainerState{Running: &corev1.ContainerStateRunning{}})
	if err := b.cs.CoreV1().Pods("ns").Delete(context.Background(), b.r.name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, errc); err == nil || !strings.Contains(err.Error(), "pod deleted") {
		t.Fatalf("err = %v, want pod deleted", err)
	}
}

func TestRunScheduleTimeout(t *testing.T) {
	t.Parallel()
	one := int64(1)
	b := setupFake(t, func(o *PodOptions) { o.ScheduleTimeout = &one })
	start := time.Now()
	errc := b.runInBackground(t)
	err := receive(t, errc)
	if err == nil || !strings.Contains(err.Error(), "schedule timeout") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d < time.Second || d > 5*time.Second {
		t.Errorf("schedule timeout of 1s fired after %s", d)
	}
}

func TestRunKilledDeletesPod(t *testing.T) {
	t.Parallel()
	grace := int64(3)
	b := setupFake(t, func(o *PodOptions) { o.OnFinishAction = KeepPod; o.TerminationGracePeriod = &grace })
	if err := b.r.launch(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.r.runToEnd(ctx); err == nil {
		t.Fatal("killed task succeeded")
	}
	var deleted bool
	for _, a := range b.cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "pods" {
			deleted = true
			if gp := d.GetDeleteOptions().GracePeriodSeconds; gp == nil || *gp != 3 {
				t.Errorf("grace period = %v, want 3", gp)
			}
		}
	}
	if !deleted {
		t.Error("killed task's pod not deleted (even with keep_pod)")
	}
}
