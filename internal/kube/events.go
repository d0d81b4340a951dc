package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// PodEvent is one Kubernetes event about a pod.
type PodEvent struct {
	Time    time.Time // when it last happened
	Type    string    // Normal, Warning
	Reason  string
	Message string
	Count   int
}

// PodEvents lists the events of one pod, oldest first.
func PodEvents(ctx context.Context, cs kubernetes.Interface, namespace, name string) ([]PodEvent, error) {
	list, err := cs.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": name, "involvedObject.namespace": namespace}.String(),
	})
	if err != nil {
		return nil, fmt.Errorf("list events of pod %s/%s: %w", namespace, name, err)
	}
	out := make([]PodEvent, 0, len(list.Items))
	for _, e := range list.Items {
		out = append(out, PodEvent{Time: EventTime(e), Type: e.Type, Reason: e.Reason,
			Message: strings.TrimSpace(e.Message), Count: int(max(e.Count, 1))})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// EventTime is when an event last happened, whichever of its timestamps the
// component that wrote it filled in.
func EventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
