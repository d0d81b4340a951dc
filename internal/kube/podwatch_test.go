package kube_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/localenv/kubetest"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// Given two waiters on two pods of one namespace, they share one watch;
// each is woken for its own pod and reads it from the watch's cache; the
// watch stops with the last waiter. Pods without the label are not seen.
func TestPodWatchesShareOneWatchPerNamespace(t *testing.T) {
	kubeconfig, ns, cs := kubetest.Kubeconfig(t), kubetest.Namespace(t), kubetest.Client(t)
	cluster := kube.Cluster{ConfigFile: kubeconfig}
	client, err := kube.NewClients().Get(cluster)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := kube.NewPodWatches("watched=yes")
	a := w.Subscribe(client, cluster, ns, "a")
	b := w.Subscribe(client, cluster, ns, "b")
	if n := w.Count(); n != 1 {
		t.Errorf("%d watches for one namespace, want 1", n)
	}
	if err := a.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	create := func(name, label string) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"watched": label}},
			Spec: corev1.PodSpec{NodeName: "nowhere", Containers: []corev1.Container{{Name: "c", Image: "alpine"}}}}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create("b", "no") // not podflow's: never seen
	create("a", "yes")
	select {
	case <-a.Changed():
	case <-ctx.Done():
		t.Fatal("no wake-up for pod a")
	}
	if p, err := a.Pod(); err != nil || p == nil || p.Name != "a" {
		t.Errorf("a.Pod() = %v, %v; want pod a", p, err)
	}
	select {
	case <-b.Changed():
		t.Error("b woken for a pod outside the selector (or for a)")
	case <-time.After(500 * time.Millisecond):
	}
	if p, err := b.Pod(); err != nil || p != nil {
		t.Errorf("b.Pod() = %v, %v; want none (not labelled)", p, err)
	}
	a.Close()
	a.Close() // twice is harmless
	if n := w.Count(); n != 1 {
		t.Errorf("%d watches while b still waits, want 1", n)
	}
	b.Close()
	if n := w.Count(); n != 0 {
		t.Errorf("%d watches after the last waiter left, want 0", n)
	}
}
