package e2e

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDeletingRunningPodKillsItsProcesses(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	marker := uniqueSleep()
	// The background sleep outlives the shell's SIGTERM: only killing the pod's PID namespace ends it.
	pod := simplePod(ns, "doomed", "sh", "-c", marker+" & "+marker+"; wait")
	pod.Spec.TerminationGracePeriodSeconds = ptr(int64(20))
	createPod(t, pod)
	waitRunning(t, ns, pod.Name)
	// Running is reported when the shell starts; its children follow a few milliseconds later.
	waitForProcesses(t, marker, 2)
	start := time.Now()
	if err := shared.client.CoreV1().Pods(ns).Delete(testContext(t, 10*time.Second), pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ns, pod.Name, 30*time.Second)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("pod object removed after %s: want it removed once its processes exit, not after the grace period", took)
	}
	if pids := processesWith(marker); len(pids) != 0 {
		t.Errorf("processes still alive after the pod was deleted: %v", pids)
	}
}

func TestKillAllInsidePodOnlyKillsThatPod(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	neighbour := simplePod(ns, "neighbour", "sleep", "3600")
	createPod(t, neighbour)
	victim := simplePod(ns, "victim", "sleep", "3600")
	createPod(t, victim)
	waitRunning(t, ns, neighbour.Name)
	waitRunning(t, ns, victim.Name)

	_, _ = kubectl(t, "exec", "-n", ns, victim.Name, "--", "sh", "-c", "kill -9 -1")
	p := waitPhase(t, ns, victim.Name, corev1.PodFailed)
	if term := terminated(p, "main"); term == nil || term.ExitCode != 137 {
		t.Errorf("victim: want terminated 137, got %s", describe(p))
	}
	n, err := shared.client.CoreV1().Pods(ns).Get(testContext(t, 10*time.Second), neighbour.Name, metav1.GetOptions{})
	if err != nil || n.Status.Phase != corev1.PodRunning {
		t.Fatalf("neighbour pod after kill -9 -1 in another pod: %v %s", err, describe(n))
	}
	if out := mustKubectl(t, "exec", "-n", ns, neighbour.Name, "--", "echo", "alive"); out != "alive\n" {
		t.Errorf("neighbour exec: %q", out)
	}
}
