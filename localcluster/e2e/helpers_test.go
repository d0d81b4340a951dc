package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
)

// uniqueSleep is a `sleep` command line no other process on the machine has, to find a pod's processes.
func uniqueSleep() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("sleep %d", 1000000+(int(b[0])<<16|int(b[1])<<8|int(b[2])))
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := "e2e-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.TrimRight(name, "-") + "-" + randomSuffix()
	ctx := testContext(t, 30*time.Second)
	_, err := shared.client.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = shared.client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	waitDefaultServiceAccount(t, name)
	return name
}

// waitDefaultServiceAccount waits (by watch) for the controller-manager to create the default SA, without
// which the ServiceAccount admission plugin rejects pods.
func waitDefaultServiceAccount(t *testing.T, ns string) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	w, err := shared.client.CoreV1().ServiceAccounts(ns).Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", "default").String()})
	if err != nil {
		t.Fatalf("watch serviceaccounts: %v", err)
	}
	defer w.Stop()
	if _, err := shared.client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{}); err == nil {
		return
	}
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed before default serviceaccount appeared in %s", ns)
			}
			if ev.Type == watch.Added {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no default serviceaccount in %s after 30s", ns)
		}
	}
}

func createPod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	created, err := shared.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	return created
}

// simplePod is a pod with one container running argv.
func simplePod(ns, name string, argv ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr(int64(5)),
			Containers:                    []corev1.Container{{Name: "main", Image: "busybox", Command: argv}},
		},
	}
}

// waitPod watches the pod until done returns true and returns that version of it.
func waitPod(t *testing.T, ns, name string, timeout time.Duration, what string, done func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	ctx := testContext(t, timeout)
	pods := shared.client.CoreV1().Pods(ns)
	var last *corev1.Pod
	for ctx.Err() == nil {
		list, err := pods.List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
		if err != nil {
			break
		}
		if len(list.Items) == 1 {
			last = &list.Items[0]
			if done(last) {
				return last
			}
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: list.ResourceVersion,
		})
		if err != nil {
			break
		}
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				last = p
				if done(p) {
					w.Stop()
					return p
				}
			}
		}
		w.Stop()
	}
	t.Fatalf("pod %s/%s: not %s within %s; last seen: %s", ns, name, what, timeout, describe(last))
	return nil
}

func waitPhase(t *testing.T, ns, name string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	return waitPod(t, ns, name, 60*time.Second, string(phase), func(p *corev1.Pod) bool { return p.Status.Phase == phase })
}

func waitRunning(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	return waitPod(t, ns, name, 60*time.Second, "running", func(p *corev1.Pod) bool {
		if p.Status.Phase != corev1.PodRunning {
			return false
		}
		for _, st := range p.Status.ContainerStatuses {
			if st.State.Running == nil {
				return false
			}
		}
		return true
	})
}

// waitGone waits until the pod object no longer exists.
func waitGone(t *testing.T, ns, name string, timeout time.Duration) {
	t.Helper()
	ctx := testContext(t, timeout)
	for {
		_, err := shared.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("pod %s/%s still exists after %s", ns, name, timeout)
		}
		w, err := shared.client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
		if err != nil {
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				w.Stop()
				return
			}
		}
		w.Stop()
	}
}

func describe(p *corev1.Pod) string {
	if p == nil {
		return "<none>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s reason=%s", p.Status.Phase, p.Status.Reason)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s(%s)", c.Type, c.Status, c.Reason)
	}
	for _, st := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		fmt.Fprintf(&b, " [%s: %s]", st.Name, stateString(st.State))
	}
	return b.String()
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return "waiting " + s.Waiting.Reason + " " + s.Waiting.Message
	case s.Running != nil:
		return "running"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated %d %s %s", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
	}
	return "unknown"
}

func podLogs(t *testing.T, ns, name, container string, opts *corev1.PodLogOptions) string {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	if opts == nil {
		opts = &corev1.PodLogOptions{}
	}
	opts.Container = container
	data, err := shared.client.CoreV1().Pods(ns).GetLogs(name, opts).DoRaw(ctx)
	if err != nil {
		t.Fatalf("logs of %s/%s: %v", ns, name, err)
	}
	return string(data)
}

// kubectl runs bin/kubectl against the shared cluster and returns its combined output.
func kubectl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx := testContext(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, kubectlBin(), append([]string{"--kubeconfig", shared.kubeconfig}, args...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

func mustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := kubectl(t, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// execInPod runs argv in a container through the apiserver with client-go, over WebSocket or SPDY.
func execInPod(t *testing.T, ns, pod, container string, websocket bool, argv ...string) (string, string, error) {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	req := shared.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Container: container, Command: argv, Stdout: true, Stderr: true,
	}, scheme.ParameterCodec)
	var executor remotecommand.Executor
	var err error
	if websocket {
		executor, err = remotecommand.NewWebSocketExecutor(shared.config, "GET", req.URL().String())
	} else {
		executor, err = remotecommand.NewSPDYExecutor(shared.config, "POST", req.URL())
	}
	if err != nil {
		t.Fatalf("exec executor: %v", err)
	}
	var stdout, stderr bytes.Buffer
	err = executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	return stdout.String(), stderr.String(), err
}

// processesWith lists host PIDs whose command line contains marker.
func processesWith(marker string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(bytes.ReplaceAll(data, []byte{0}, []byte{' '})), marker) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func terminated(p *corev1.Pod, container string) *corev1.ContainerStateTerminated {
	for _, st := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if st.Name == container {
			return st.State.Terminated
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// waitForProcesses waits until at least n host processes carry marker.
func waitForProcesses(t *testing.T, marker string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(processesWith(marker)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d processes carry %q after 10s", n, marker)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func mustKubectlStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx := testContext(t, 60*time.Second)
	cmd := exec.CommandContext(ctx, kubectlBin(), append([]string{"--kubeconfig", shared.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// execTTY runs argv with a terminal through client-go (WebSocket) and returns what the terminal showed.
func execTTY(t *testing.T, ns, pod, container string, argv ...string) string {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	req := shared.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Container: container, Command: argv, Stdout: true, TTY: true,
	}, scheme.ParameterCodec)
	executor, err := remotecommand.NewWebSocketExecutor(shared.config, "GET", req.URL().String())
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := executor.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Tty: true}); err != nil {
		t.Fatalf("exec with tty: %v", err)
	}
	return stdout.String()
}

// followLogLines follows a container's log until it has n lines: no polling, the stream delivers them.
func followLogLines(t *testing.T, ns, pod, container string, n int) []string {
	t.Helper()
	ctx := testContext(t, 30*time.Second)
	stream, err := shared.client.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow logs of %s/%s: %v", ns, pod, err)
	}
	defer stream.Close()
	var lines []string
	scanner := bufio.NewScanner(stream)
	for len(lines) < n && scanner.Scan() {
		lines = append(lines, scanner.Text())
	}
	if len(lines) < n {
		t.Fatalf("log of %s/%s ended after %d lines, want %d: %q", ns, pod, len(lines), n, lines)
	}
	return lines
}
