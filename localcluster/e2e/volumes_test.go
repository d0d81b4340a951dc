package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func xcomVolume() ([]corev1.Volume, []corev1.VolumeMount) {
	return []corev1.Volume{{Name: "xcom", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		[]corev1.VolumeMount{{Name: "xcom", MountPath: "/airflow/xcom"}}
}

// Two pods write the same mountPath file; each reads its own, and nothing lands in the host's /airflow.
func TestSameMountPathInTwoPodsIsPrivate(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	hostFileBefore := fileExists("/airflow/xcom/return.json")
	for _, name := range []string{"writer-a", "writer-b"} {
		vols, mounts := xcomVolume()
		pod := simplePod(ns, name, "sh", "-c",
			"mkdir -p /airflow/xcom; echo '\""+name+"\"' > /airflow/xcom/return.json; sleep 1; cat /airflow/xcom/return.json")
		pod.Spec.Volumes = vols
		pod.Spec.Containers[0].VolumeMounts = mounts
		createPod(t, pod)
	}
	for _, name := range []string{"writer-a", "writer-b"} {
		waitPhase(t, ns, name, corev1.PodSucceeded)
		if got := podLogs(t, ns, name, "main", nil); got != `"`+name+`"`+"\n" {
			t.Errorf("%s read %q, want its own value", name, got)
		}
	}
	if !hostFileBefore && fileExists("/airflow/xcom/return.json") {
		t.Errorf("a pod wrote the host's /airflow/xcom/return.json")
	}
}

// The XCom pattern podflow's pod operator uses: the base container writes return.json to an emptyDir it
// shares with a sidecar; the worker execs into the sidecar to read it and to let it exit.
func TestXComSidecarPattern(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	vols, mounts := xcomVolume()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "xcom"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Volumes:       vols,
			Containers: []corev1.Container{
				{Name: "base", Image: "alpine", Command: []string{"sh", "-c",
					"mkdir -p /airflow/xcom/; echo '[1,2,3,4]' > /airflow/xcom/return.json"}, VolumeMounts: mounts},
				{Name: "airflow-xcom-sidecar", Image: "alpine", Command: []string{"sh", "-c",
					"trap 'exit 0' INT TERM; while [ ! -f /airflow/xcom/.done ]; do sleep 0.1; done"}, VolumeMounts: mounts},
			},
		},
	}
	createPod(t, pod)
	p := waitPod(t, ns, pod.Name, 30*time.Second, "base terminated", func(p *corev1.Pod) bool {
		return terminated(p, "base") != nil
	})
	if term := terminated(p, "base"); term.ExitCode != 0 {
		t.Fatalf("base container: %s", describe(p))
	}
	out := mustKubectl(t, "exec", "-n", ns, pod.Name, "-c", "airflow-xcom-sidecar", "--", "sh", "-c", "cat /airflow/xcom/return.json")
	if out != "[1,2,3,4]\n" {
		t.Errorf("xcom read via exec = %q", out)
	}
	if _, _, err := execInPod(t, ns, pod.Name, "airflow-xcom-sidecar", true, "touch", "/airflow/xcom/.done"); err != nil {
		t.Fatalf("touch .done: %v", err)
	}
	waitPhase(t, ns, pod.Name, corev1.PodSucceeded)
}

func TestSecretAsFileAndEnv(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := testContext(t, 10*time.Second)
	if _, err := shared.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db"}, StringData: map[string]string{"password": "s3cret"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := simplePod(ns, "secret-user", "sh", "-c", "cat /etc/db/password; echo; echo $DB_PASSWORD; ls /var/run/secrets/kubernetes.io/serviceaccount")
	pod.Spec.Volumes = []corev1.Volume{{Name: "db", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "db", MountPath: "/etc/db", ReadOnly: true}}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}}
	createPod(t, pod)
	waitPhase(t, ns, pod.Name, corev1.PodSucceeded)
	got := podLogs(t, ns, pod.Name, "main", nil)
	if !strings.HasPrefix(got, "s3cret\ns3cret\n") || !strings.Contains(got, "token") || !strings.Contains(got, "ca.crt") {
		t.Errorf("logs %q: want the secret from file and env, and the service-account token files", got)
	}
}

func TestPVCBoundToHostPathPVIsMounted(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := testContext(t, 30*time.Second)
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "seed.txt"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pvName := ns + "-pv"
	if _, err := shared.client.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{
			StorageClassName:              "manual-" + ns,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.client.CoreV1().PersistentVolumes().Delete(ctx, pvName, metav1.DeleteOptions{}) })
	if _, err := shared.client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr("manual-" + ns),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := simplePod(ns, "pvc-user", "sh", "-c", "cat /mnt/data/seed.txt; echo written > /mnt/data/out.txt")
	pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/mnt/data"}}
	createPod(t, pod)
	waitPhase(t, ns, pod.Name, corev1.PodSucceeded)
	if got := podLogs(t, ns, pod.Name, "main", nil); got != "from the host\n" {
		t.Errorf("logs %q", got)
	}
	if data, err := os.ReadFile(filepath.Join(hostDir, "out.txt")); err != nil || string(data) != "written\n" {
		t.Errorf("file written through the PVC: %q, %v", data, err)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// A pod whose secret does not exist yet waits in ContainerCreating with FailedMount events, and runs once
// the secret is created, as with a kubelet.
func TestPodWaitsForMissingSecret(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "patient", "cat", "/etc/late/value")
	pod.Spec.Volumes = []corev1.Volume{{Name: "late", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "late"}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "late", MountPath: "/etc/late"}}
	createPod(t, pod)
	ctx := testContext(t, 30*time.Second)
	w, err := shared.client.CoreV1().Events(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range w.ResultChan() {
		if e, ok := ev.Object.(*corev1.Event); ok && e.Reason == "FailedMount" {
			break
		}
	}
	w.Stop()
	if p, _ := shared.client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{}); p.Status.Phase != corev1.PodPending {
		t.Errorf("pod with a missing secret: %s", describe(p))
	}
	if _, err := shared.client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "late"}, StringData: map[string]string{"value": "arrived"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, ns, pod.Name, corev1.PodSucceeded)
	if got := podLogs(t, ns, pod.Name, "main", nil); got != "arrived" {
		t.Errorf("logs %q", got)
	}
}

// Thirty pods at once, each writing the same XCom path in its own emptyDir: all succeed with their own
// value, and the shared mount point is handled by reference.
func TestManyPodsWithTheSameMountPathAtOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	const n = 30
	start := time.Now()
	for i := range n {
		name := fmt.Sprintf("many-%d", i)
		vols, mounts := xcomVolume()
		pod := simplePod(ns, name, "sh", "-c", "echo "+name+" > /airflow/xcom/return.json; cat /airflow/xcom/return.json")
		pod.Spec.Volumes = vols
		pod.Spec.Containers[0].VolumeMounts = mounts
		createPod(t, pod)
	}
	for i := range n {
		name := fmt.Sprintf("many-%d", i)
		waitPhase(t, ns, name, corev1.PodSucceeded)
		if got := podLogs(t, ns, name, "main", nil); got != name+"\n" {
			t.Errorf("%s read %q", name, got)
		}
	}
	t.Logf("%d pods created and Succeeded in %s", n, time.Since(start).Round(time.Millisecond))
}

// Without a volume, what a container writes stays in its own copy-on-write root: exec sees it, the host
// and other containers do not.
func TestWritesOutsideVolumesStayInTheContainer(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	path := "/opt/localcluster-e2e-" + randomSuffix() + "/return.json"
	createPod(t, simplePod(ns, "scribbler", "sh", "-c", "mkdir -p $(dirname "+path+") && echo mine > "+path+" && exec sleep 3600"))
	waitRunning(t, ns, "scribbler")
	createPod(t, simplePod(ns, "reader", "sh", "-c", "cat "+path+" 2>/dev/null || echo absent"))
	waitPhase(t, ns, "reader", corev1.PodSucceeded)
	if got := podLogs(t, ns, "reader", "main", nil); got != "absent\n" {
		t.Errorf("another pod read %q", got)
	}
	out := mustKubectl(t, "exec", "-n", ns, "scribbler", "--", "sh", "-c", "while [ ! -s "+path+" ]; do sleep 0.05; done; cat "+path)
	if out != "mine\n" {
		t.Errorf("exec in the writing container read %q", out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the write reached the host's %s: %v", path, err)
	}
}
