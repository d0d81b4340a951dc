package cluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const startTimeout = 3 * time.Minute

// waitAPIServerReady polls /readyz: the apiserver offers no push signal for its own readiness.
func waitAPIServerReady(ctx context.Context, client kubernetes.Interface, done <-chan error) error {
	return poll(ctx, "kube-apiserver /readyz", done, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil && string(body) == "ok", nil
	})
}

// waitSchedulable waits until a pod created now would be admitted and scheduled: the node is Ready and no
// longer carries the not-ready taint, and the default namespace has its default ServiceAccount.
func waitSchedulable(ctx context.Context, client kubernetes.Interface, nodeName string, nodeDone <-chan struct{}) error {
	failed := make(chan error, 1)
	go func() {
		select {
		case <-nodeDone:
			failed <- fmt.Errorf("node stopped")
		case <-ctx.Done():
		}
	}()
	return poll(ctx, "node "+nodeName+" Ready and default ServiceAccount", failed, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil || !nodeReady(n) {
			return false, nil
		}
		_, err = client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

func nodeReady(n *corev1.Node) bool {
	for _, t := range n.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false
		}
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func poll(ctx context.Context, what string, failed <-chan error, check func(context.Context) (bool, error)) error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		reqCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := check(reqCtx)
		cancel()
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case err := <-failed:
			return fmt.Errorf("wait for %s: component failed: %w", what, orStopped(err))
		case <-deadline.C:
			return fmt.Errorf("wait for %s: not ready after %s", what, startTimeout)
		case <-tick.C:
		}
	}
}
