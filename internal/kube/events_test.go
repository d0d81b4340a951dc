package kube

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/localenv/kubetest"
)

// TestPodEventsOfOnePodOldestFirst writes events on the real API server as
// the kubelet and scheduler would, for two pods, and reads one pod's.
func TestPodEventsOfOnePodOldestFirst(t *testing.T) {
	ns, cs := kubetest.Namespace(t), kubetest.Client(t)
	ctx := context.Background()
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	write := func(name, pod, reason, typ string, at time.Time, count int32) {
		t.Helper()
		_, err := cs.CoreV1().Events(ns).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: ns},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod},
			Reason:         reason, Type: typ, Message: " " + reason + " of " + pod + " ",
			LastTimestamp: metav1.NewTime(at), FirstTimestamp: metav1.NewTime(at), Count: count,
			Source: corev1.EventSource{Component: "kubelet"},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	write("e1", "task-pod", "Failed", corev1.EventTypeWarning, base.Add(20*time.Second), 3)
	write("e2", "task-pod", "Scheduled", corev1.EventTypeNormal, base, 0)
	write("e3", "other-pod", "Pulled", corev1.EventTypeNormal, base.Add(10*time.Second), 1)

	got, err := PodEvents(ctx, cs, ns, "task-pod")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("events of task-pod: %+v, want 2", got)
	}
	if got[0].Reason != "Scheduled" || !got[0].Time.Equal(base) || got[0].Count != 1 {
		t.Errorf("first event %+v, want Scheduled at %s counted once", got[0], base)
	}
	if got[1].Reason != "Failed" || got[1].Type != "Warning" || got[1].Count != 3 || got[1].Message != "Failed of task-pod" {
		t.Errorf("second event %+v", got[1])
	}
	if _, err := PodEvents(ctx, cs, "no-such-namespace-x", "task-pod"); err != nil {
		t.Errorf("a namespace without events: %v, want an empty list", err)
	}
}
