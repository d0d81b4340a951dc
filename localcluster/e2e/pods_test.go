package e2e

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func TestKubectlRunSucceedsAndLogsPrintOutput(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	mustKubectl(t, "run", "hello", "-n", ns, "--restart=Never", "--image=busybox", "--", "sh", "-c", "echo hi")
	p := waitPhase(t, ns, "hello", corev1.PodSucceeded)
	term := terminated(p, "hello")
	if term == nil || term.ExitCode != 0 || term.Reason != "Completed" || term.StartedAt.IsZero() || term.FinishedAt.IsZero() {
		t.Errorf("container state: %s", describe(p))
	}
	if out := mustKubectl(t, "logs", "-n", ns, "hello"); out != "hi\n" {
		t.Errorf("kubectl logs = %q, want %q", out, "hi\n")
	}
	events, err := shared.client.CoreV1().Events(ns).List(testContext(t, 10*time.Second), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "hello").String()})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, e := range events.Items {
		reasons[e.Reason] = true
	}
	for _, want := range []string{"Scheduled", "Started", "Completed"} {
		if !reasons[want] {
			t.Errorf("no %s event; got %v", want, reasons)
		}
	}
}

func TestExecIntoRunningPod(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "target", "sleep", "3600")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "GREETING", Value: "hello from the container"}}
	createPod(t, pod)
	waitRunning(t, ns, pod.Name)

	out := mustKubectl(t, "exec", "-n", ns, pod.Name, "--", "sh", "-c", "echo $GREETING; cat /proc/1/cmdline | tr '\\0' ' '")
	if !strings.Contains(out, "hello from the container") || !strings.Contains(out, "sandbox-pause") {
		t.Errorf("kubectl exec output %q: want the container's env and the pod's own PID 1", out)
	}
	if _, err := kubectl(t, "exec", "-n", ns, pod.Name, "--", "sh", "-c", "exit 3"); err == nil {
		t.Errorf("kubectl exec of `exit 3`: want an error")
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("kubectl exec of `exit 3`: want exit code 3, got %v", err)
	}
	for _, ws := range []bool{false, true} {
		stdout, _, err := execInPod(t, ns, pod.Name, "main", ws, "sh", "-c", "echo out; echo err >&2")
		if err != nil || stdout != "out\n" {
			t.Errorf("client-go exec (websocket=%v): stdout %q err %v", ws, stdout, err)
		}
	}
}

func TestCommandNotFoundExits127(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createPod(t, simplePod(ns, "nocmd", "no-such-command-anywhere"))
	p := waitPhase(t, ns, "nocmd", corev1.PodFailed)
	if term := terminated(p, "main"); term == nil || term.ExitCode != 127 || term.Reason != "Error" {
		t.Errorf("want terminated 127 Error, got %s", describe(p))
	}
}

func TestMissingImageStaysWaitingWithImagePullError(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "noimage", "true")
	pod.Spec.Containers[0].Image = "busybox:missing"
	createPod(t, pod)
	p := waitPod(t, ns, pod.Name, 30*time.Second, "ImagePullBackOff", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
			p.Status.ContainerStatuses[0].State.Waiting.Reason == "ImagePullBackOff"
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", p.Status.Phase)
	}
}

func TestInitContainersEnvAndWorkingDir(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := testContext(t, 30*time.Second)
	if _, err := shared.client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"COLOR": "blue", "SIZE": "L"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	work := "/tmp/localcluster-e2e-wd-" + randomSuffix()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ordered", Labels: map[string]string{"app": "ordered"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Volumes:       []corev1.Volume{{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			InitContainers: []corev1.Container{
				{Name: "first", Image: "busybox", Command: []string{"sh", "-c", "echo first >> /data/order"},
					VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/data"}}},
				{Name: "second", Image: "busybox", Command: []string{"sh", "-c", "echo second >> /data/order"},
					VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/data"}}},
			},
			Containers: []corev1.Container{{
				Name: "main", Image: "busybox", WorkingDir: work,
				Command: []string{"sh", "-c", `cat /data/order; echo "$COLOR $SIZE $SHIRT $POD $NS $APP"; pwd; echo $(SHIRT)`},
				Env: []corev1.EnvVar{
					{Name: "SHIRT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "COLOR"}}},
					{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "NS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
				},
				EnvFrom:      []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
				VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/data"}},
			}},
		},
	}
	createPod(t, pod)
	waitPhase(t, ns, pod.Name, corev1.PodSucceeded)
	want := "first\nsecond\nblue L blue ordered " + ns + " ordered\n" + work + "\nblue\n"
	if got := podLogs(t, ns, pod.Name, "main", nil); got != want {
		t.Errorf("logs:\n%q\nwant\n%q", got, want)
	}
}

func TestActiveDeadlineFailsThePod(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "slow", "sleep", "3600")
	pod.Spec.ActiveDeadlineSeconds = ptr(int64(2))
	createPod(t, pod)
	p := waitPhase(t, ns, pod.Name, corev1.PodFailed)
	if p.Status.Reason != "DeadlineExceeded" {
		t.Errorf("reason %q, want DeadlineExceeded", p.Status.Reason)
	}
}

func TestLogsFollowTimestampsTailAndSince(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createPod(t, simplePod(ns, "ticker", "sh", "-c", "for i in 1 2 3 4 5; do echo line $i; sleep 0.6; done"))
	waitPod(t, ns, "ticker", 30*time.Second, "started", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := shared.client.CoreV1().Pods(ns).GetLogs("ticker", &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	scanner := bufio.NewScanner(stream)
	for scanner.Scan() {
		lines = append(lines, scanner.Text())
	}
	stream.Close()
	if strings.Join(lines, ",") != "line 1,line 2,line 3,line 4,line 5" {
		t.Errorf("followed logs = %q", lines)
	}
	waitPhase(t, ns, "ticker", corev1.PodSucceeded)
	if got := podLogs(t, ns, "ticker", "main", &corev1.PodLogOptions{TailLines: ptr(int64(2))}); got != "line 4\nline 5\n" {
		t.Errorf("tailLines=2: %q", got)
	}
	stamped := podLogs(t, ns, "ticker", "main", &corev1.PodLogOptions{Timestamps: true})
	first := strings.SplitN(stamped, "\n", 2)[0]
	ts, text, _ := strings.Cut(first, " ")
	when, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || text != "line 1" {
		t.Fatalf("timestamped line %q: %v", first, err)
	}
	// sinceTime travels with one-second precision: two seconds after line 1 excludes it and keeps line 5.
	since := metav1.NewTime(when.Truncate(time.Second).Add(2 * time.Second))
	if got := podLogs(t, ns, "ticker", "main", &corev1.PodLogOptions{SinceTime: &since}); strings.Contains(got, "line 1") || !strings.Contains(got, "line 5") {
		t.Errorf("sinceTime: %q", got)
	}
}

func TestOnFailureRestartsAndPreviousLogs(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "retry", "sh", "-c", "echo run; test -f /d/ok || { touch /d/ok; echo fail; exit 1; }")
	pod.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	pod.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "d", MountPath: "/d"}}
	createPod(t, pod)
	p := waitPhase(t, ns, pod.Name, corev1.PodSucceeded)
	st := p.Status.ContainerStatuses[0]
	if st.RestartCount != 1 || st.LastTerminationState.Terminated == nil || st.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("restartCount %d lastState %+v", st.RestartCount, st.LastTerminationState)
	}
	if got := podLogs(t, ns, pod.Name, "main", &corev1.PodLogOptions{Previous: true}); got != "run\nfail\n" {
		t.Errorf("previous logs %q", got)
	}
	if got := podLogs(t, ns, pod.Name, "main", nil); got != "run\n" {
		t.Errorf("logs %q", got)
	}
}

func TestDeletingPendingPodRemovesItAtOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "stuck", "true")
	pod.Spec.Containers[0].Image = "busybox:missing"
	pod.Spec.TerminationGracePeriodSeconds = nil
	createPod(t, pod)
	waitPod(t, ns, pod.Name, 30*time.Second, "ErrImagePull", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
			strings.Contains(p.Status.ContainerStatuses[0].State.Waiting.Reason, "Image")
	})
	start := time.Now()
	mustKubectl(t, "delete", "pod", "-n", ns, pod.Name)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("kubectl delete took %s for a pod with nothing running (grace period 30s)", took)
	}
}

func TestExecWithTTYAndStdin(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createPod(t, simplePod(ns, "tty", "sleep", "3600"))
	waitRunning(t, ns, "tty")
	out := mustKubectlStdin(t, "from-stdin\n", "exec", "-i", "-n", ns, "tty", "--", "sh", "-c", "read line; echo got $line")
	if out != "got from-stdin\n" {
		t.Errorf("exec -i: %q", out)
	}
	out = mustKubectlStdin(t, "", "exec", "-n", ns, "tty", "--", "sh", "-c", "test -t 0 && echo tty || echo notty")
	if out != "notty\n" {
		t.Errorf("exec without -t: %q", out)
	}
	ttyOut := execTTY(t, ns, "tty", "main", "tty")
	if !strings.Contains(ttyOut, "/dev/pts/") {
		t.Errorf("exec with a TTY: `tty` printed %q", ttyOut)
	}
}

// A container's exit reaches watchers at once: the node pushes every state change, it does not poll.
func TestContainerExitIsVisibleWithinASecond(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "waiter", "sh", "-c", "while [ ! -f /d/stop ]; do sleep 0.01; done")
	pod.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "d", MountPath: "/d"}}
	createPod(t, pod)
	waitRunning(t, ns, pod.Name)
	if _, _, err := execInPod(t, ns, pod.Name, "main", true, "touch", "/d/stop"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitPod(t, ns, pod.Name, 10*time.Second, "terminated", func(p *corev1.Pod) bool { return terminated(p, "main") != nil })
	took := time.Since(start)
	t.Logf("container exit visible to a watcher %s after the exec returned", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("container exit took %s to reach the apiserver", took)
	}
}

func TestRunAsUserAppliesToContainerAndExec(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "nobody", "sh", "-c", "id -u; id -g; exec sleep 3600")
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr(int64(65534)), RunAsGroup: ptr(int64(65534))}
	createPod(t, pod)
	waitRunning(t, ns, pod.Name)
	if lines := followLogLines(t, ns, pod.Name, "main", 2); lines[0] != "65534" || lines[1] != "65534" {
		t.Errorf("id -u, id -g in the container: %q, want 65534 twice", lines)
	}
	if out := mustKubectl(t, "exec", "-n", ns, pod.Name, "--", "id", "-u"); out != "65534\n" {
		t.Errorf("exec id -u = %q, want 65534", out)
	}
}

// Labels and annotations set on a running pod survive the node's later status updates (the pods/status
// endpoint stores metadata too).
func TestLabelsAddedToRunningPodSurviveStatusUpdates(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "labelled", "sh", "-c", "while [ ! -f /d/stop ]; do sleep 0.01; done")
	pod.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "d", MountPath: "/d"}}
	createPod(t, pod)
	waitRunning(t, ns, pod.Name)
	mustKubectl(t, "label", "-n", ns, "pod", pod.Name, "already_checked=true")
	mustKubectl(t, "annotate", "-n", ns, "pod", pod.Name, "podflow/note=kept")
	if _, _, err := execInPod(t, ns, pod.Name, "main", false, "touch", "/d/stop"); err != nil {
		t.Fatal(err)
	}
	p := waitPhase(t, ns, pod.Name, corev1.PodSucceeded)
	if p.Labels["already_checked"] != "true" || p.Annotations["podflow/note"] != "kept" {
		t.Errorf("after status updates: labels %v annotations %v", p.Labels, p.Annotations)
	}
}

// Following a container that has printed nothing yet returns the stream at once (as a kubelet does), so a
// client can start following right after the pod starts.
func TestFollowingASilentContainerStartsAtOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createPod(t, simplePod(ns, "silent", "sleep", "3600"))
	waitRunning(t, ns, "silent")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := shared.client.CoreV1().Pods(ns).GetLogs("silent", &corev1.PodLogOptions{Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow a silent container: %v", err)
	}
	stream.Close()
}

// An env var from a missing secret keeps the container waiting with CreateContainerConfigError; the pod
// runs once the secret exists, as with a kubelet.
func TestEnvFromMissingSecretIsCreateContainerConfigError(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "needs-token", "sh", "-c", "echo $TOKEN")
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "api"}, Key: "token"}}}}
	createPod(t, pod)
	p := waitPod(t, ns, pod.Name, 30*time.Second, "CreateContainerConfigError", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil &&
			p.Status.ContainerStatuses[0].State.Waiting.Reason == "CreateContainerConfigError"
	})
	if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; msg != `secret "api" not found` || p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, message %q", p.Status.Phase, msg)
	}
	ctx := testContext(t, 10*time.Second)
	if _, err := shared.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "api"}, StringData: map[string]string{"token": "t0k3n"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, pod.Name, corev1.PodSucceeded)
	if got := podLogs(t, ns, pod.Name, "main", nil); got != "t0k3n\n" {
		t.Errorf("logs %q", got)
	}
}

func TestTerminationMessage(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	written := simplePod(ns, "written", "sh", "-c", "echo bye > /dev/termination-log; exit 3")
	createPod(t, written)
	fallback := simplePod(ns, "fallback", "sh", "-c", "echo first; echo oops; exit 1")
	fallback.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	createPod(t, fallback)
	for name, want := range map[string]string{"written": "bye\n", "fallback": "first\noops\n"} {
		p := waitPhase(t, ns, name, corev1.PodFailed)
		if term := terminated(p, "main"); term == nil || term.Message != want {
			t.Errorf("%s: terminated message: %s, want %q", name, describe(p), want)
		}
	}
}
