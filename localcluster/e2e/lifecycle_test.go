package e2e

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// launchToFirstPod starts a fresh cluster, runs one pod to Succeeded and reports how long that took.
// With keepRunning set, a second pod runs that command line, with an emptyDir mounted at mountPath.
func launchToFirstPod(tb testing.TB, keepRunning, mountPath string) (*cluster, time.Duration) {
	tb.Helper()
	c, err := startCluster("--node-name", "bench")
	if err != nil {
		tb.Fatalf("start second cluster: %v", err)
	}
	ctx := testContextTB(tb, 60*time.Second)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "first"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{
			{Name: "main", Image: "busybox", Command: []string{"sh", "-c", "echo hi"}}}},
	}
	w, err := c.client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", "first").String()})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Stop()
	if _, err := c.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
	for ev := range w.ResultChan() {
		if p, ok := ev.Object.(*corev1.Pod); ok && p.Status.Phase == corev1.PodSucceeded {
			break
		}
	}
	took := time.Since(c.launched)
	if keepRunning != "" {
		sleeper := pod.DeepCopy()
		sleeper.Name = "sleeper"
		sleeper.Spec.Containers[0].Command = []string{"sh", "-c", keepRunning + " & " + keepRunning + "; wait"}
		sleeper.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		sleeper.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: mountPath}}
		if _, err := c.client.CoreV1().Pods("default").Create(ctx, sleeper, metav1.CreateOptions{}); err != nil {
			tb.Fatal(err)
		}
	}
	return c, took
}

// After localcluster exits, none of its processes and none of its mounts remain.
func TestLaunchToFirstPodAndCleanShutdown(t *testing.T) {
	t.Parallel()
	marker := uniqueSleep()
	mountRoot := filepath.Join(os.TempDir(), "localcluster-e2e-mountpoint-"+randomSuffix())
	c, took := launchToFirstPod(t, marker, filepath.Join(mountRoot, "xcom"))
	t.Logf("launch → ready %s; launch → first pod Succeeded %s (goal < 8s warm)", c.startup.Round(time.Millisecond), took.Round(time.Millisecond))
	waitForProcesses(t, marker, 2)
	c.ownsDir = false
	defer os.RemoveAll(c.dir)
	if err := c.stop(); err != nil {
		t.Fatal(err)
	}
	if pids := processesWith(marker); len(pids) != 0 {
		t.Errorf("pod processes left after localcluster exited: %v", pids)
	}
	if pids := processesWith(c.dir); len(pids) != 0 {
		t.Errorf("processes mentioning the cluster dir left: %v", pids)
	}
	if mounts := mountsUnder(c.dir); len(mounts) != 0 {
		t.Errorf("mounts left under %s: %v", c.dir, mounts)
	}
	if _, err := os.Stat(mountRoot); !os.IsNotExist(err) {
		t.Errorf("mount point directory %s left on the host: %v", mountRoot, err)
	}
}

func BenchmarkLaunchToFirstPodSucceeded(b *testing.B) {
	for range b.N {
		c, took := launchToFirstPod(b, "", "")
		b.ReportMetric(took.Seconds(), "s/first-pod")
		b.ReportMetric(c.startup.Seconds(), "s/ready")
		b.Logf("launch → ready %s; launch → first pod Succeeded %s", c.startup.Round(time.Millisecond), took.Round(time.Millisecond))
		if err := c.stop(); err != nil {
			b.Fatal(err)
		}
	}
}

// mountsUnder scans every process's mountinfo for mount points under dir (or the XCom path).
func mountsUnder(dir string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		f, err := os.Open(filepath.Join("/proc", e.Name(), "mountinfo"))
		if err != nil {
			continue
		}
		scanner := bufio.NewScanner(f)
		for scanner.Scan() {
			fields := strings.Fields(scanner.Text())
			if len(fields) > 4 && (strings.HasPrefix(fields[4], dir) || strings.HasPrefix(fields[3], dir)) {
				found = append(found, e.Name()+":"+fields[4])
			}
		}
		f.Close()
	}
	return found
}

func testContextTB(tb testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	tb.Cleanup(cancel)
	return ctx
}
