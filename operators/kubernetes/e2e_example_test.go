package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/flowtest"
)

// applyDemoResources creates examples/k8s/demo-resources.yaml in the test's
// namespace; the PersistentVolume gets a per-test name, claim and directory
// (holding one file, to see the mount).
func applyDemoResources(t *testing.T, b *e2eBundle) {
	t.Helper()
	ctx := context.Background()
	src, err := os.ReadFile("../../examples/k8s/demo-resources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hostDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostDir, "hello.txt"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("demo-resources.yaml: %v", err)
		}
		raw, _ := json.Marshal(doc)
		decode := func(out any) {
			t.Helper()
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			if err := d.Decode(out); err != nil {
				t.Fatalf("demo-resources.yaml %s: %v", doc["kind"], err)
			}
		}
		switch doc["kind"] {
		case "Secret":
			var o corev1.Secret
			decode(&o)
			o.Namespace = b.ns
			_, err = b.client.CoreV1().Secrets(b.ns).Create(ctx, &o, metav1.CreateOptions{})
		case "ConfigMap":
			var o corev1.ConfigMap
			decode(&o)
			o.Namespace = b.ns
			_, err = b.client.CoreV1().ConfigMaps(b.ns).Create(ctx, &o, metav1.CreateOptions{})
		case "PersistentVolumeClaim":
			var o corev1.PersistentVolumeClaim
			decode(&o)
			o.Namespace = b.ns
			o.Spec.VolumeName = "pv-" + b.ns
			_, err = b.client.CoreV1().PersistentVolumeClaims(b.ns).Create(ctx, &o, metav1.CreateOptions{})
		case "PersistentVolume":
			var o corev1.PersistentVolume
			decode(&o)
			o.Name = "pv-" + b.ns
			o.Spec.ClaimRef.Namespace = b.ns
			o.Spec.HostPath.Path = hostDir
			_, err = b.client.CoreV1().PersistentVolumes().Create(ctx, &o, metav1.CreateOptions{})
			t.Cleanup(func() {
				_ = b.client.CoreV1().PersistentVolumes().Delete(context.Background(), o.Name, metav1.DeleteOptions{})
			})
		case "PriorityClass":
			var o schedulingv1.PriorityClass
			decode(&o)
			_, err = b.client.SchedulingV1().PriorityClasses().Create(ctx, &o, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				err = nil
			}
		default:
			t.Fatalf("demo-resources.yaml: unexpected kind %v", doc["kind"])
		}
		if err != nil {
			t.Fatalf("create %s: %v", doc["kind"], err)
		}
	}
}

// exampleTask loads a task of an example DAG, pointed at the test's cluster
// and namespace.
func exampleTask(t *testing.T, b *e2eBundle, file, taskID string) *task {
	t.Helper()
	d, errs := dag.NewParser(schemaRegistry(b.op)).ParseFile(filepath.Join("../../examples/dags", file))
	if len(errs) > 0 {
		t.Fatalf("parse %s: %v", file, errs)
	}
	dt := d.Task(taskID)
	if dt == nil {
		t.Fatalf("%s has no task %s", file, taskID)
	}
	for k, v := range map[string]string{"namespace": b.ns, "config_file": b.kubeconfig} {
		dt.Options[k] = v
		dt.Nodes[k] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
	}
	kit := flowtest.NewTask(d, dt)
	return &task{b: b, tc: kit.TC, log: kit.Log, kit: kit}
}

// TestE2EExampleKubernetes runs the seed's full example pod with the demo's
// manifest applied: the init container runs first, the secrets reach env and
// file, the ConfigMaps reach env, the PVC is mounted.
func TestE2EExampleKubernetes(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	applyDemoResources(t, b)
	tk := exampleTask(t, b, "example_kubernetes.yaml", "task")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := b.op.Execute(ctx, tk.tc)
	t.Logf("task log:\n%s", tk.log)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	log := tk.log.String()
	for _, want := range []string{
		"[base] env secret: SQL_CONN=postgresql://airflow:airflow@postgres:5432/airflow",
		"[base] file secret: postgresql://airflow:airflow@postgres:5432/airflow",
		"[base] all keys: SECRET_ALL_KEYS_A=value-a",
		"[base] configmaps: one two",
		"[base] volume: hello.txt",
		"[init-container] 10",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if i, j := strings.Index(log, "[init-container]"), strings.Index(log, "[base]"); i < 0 || j < 0 || i > j {
		t.Errorf("init container's output is not before the base container's")
	}
}

// TestE2EExampleXCom runs the seed's write-xcom task as written.
func TestE2EExampleXCom(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	tk := exampleTask(t, b, "example_kubernetes_xcom.yaml", "write-xcom")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := b.op.Execute(ctx, tk.tc)
	t.Logf("task log:\n%s", tk.log)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	got, _ := json.Marshal(res.XCom["return_value"])
	expect(t, "return_value", string(got), "[1,2,3,4]")
}

// TestE2EDryRunManifestsAccepted: every golden dry-run manifest is a pod the
// API server accepts as is (server-side dry run: nothing is created).
func TestE2EDryRunManifestsAccepted(t *testing.T) {
	t.Parallel()
	b := setupE2E(t)
	ctx := context.Background()
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "medium"}, Value: 1000}
	if _, err := b.client.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/*.golden")
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(src), "\n---\n") {
			doc = strings.TrimPrefix(doc, "---\n")
			var pod corev1.Pod
			if err := sigsyaml.UnmarshalStrict([]byte(doc), &pod); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if _, err := b.client.CoreV1().Pods(pod.Namespace).Create(ctx, &pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				t.Errorf("%s: pod %s refused: %v", file, pod.Name, err)
			}
		}
	}
}
