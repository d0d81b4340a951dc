package flowtest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// WaitPods waits until cond holds for the pods of ns matching selector, and
// returns them. It wakes on the API's watch events, not on a timer.
func WaitPods(t testing.TB, client kubernetes.Interface, ns, selector string, timeout time.Duration, cond func([]corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pods := map[string]corev1.Pod{}
	list := func() []corev1.Pod {
		out := make([]corev1.Pod, 0, len(pods))
		for _, p := range pods {
			out = append(out, p)
		}
		return out
	}
	for {
		l, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			t.Fatalf("pods %s in %s: %v", selector, ns, err)
		}
		clear(pods)
		for _, p := range l.Items {
			pods[p.Name] = p
		}
		if cond(list()) {
			return list()
		}
		w, err := client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: l.ResourceVersion})
		if err != nil {
			t.Fatalf("pods %s in %s: %v", selector, ns, err)
		}
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			if ev.Type == watch.Deleted {
				delete(pods, p.Name)
			} else {
				pods[p.Name] = *p
			}
			if cond(list()) {
				w.Stop()
				return list()
			}
		}
		w.Stop()
		if ctx.Err() != nil {
			t.Fatalf("pods %s in %s: condition not met in %s; %d pods", selector, ns, timeout, len(pods))
		}
	}
}
