package node

import (
	"context"

	vknode "github.com/virtual-kubelet/virtual-kubelet/node"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
)

// withStatusOnlyUpdates makes the pod controller's status updates send the pod's metadata as the informer
// has it, with the provider's status. The pods/status endpoint also stores labels, annotations and
// finalizers; virtual-kubelet sends the provider's copy of the whole object, which would undo a
// `kubectl label` or an operator's annotation made since the pod started. With the informer's metadata and
// resourceVersion, a change made in between makes the update conflict and be retried with fresh data.
func withStatusOnlyUpdates(cfg *vknode.PodControllerConfig) error {
	cfg.PodClient = statusOnlyPods{PodsGetter: cfg.PodClient, lister: cfg.PodInformer.Lister()}
	return nil
}

type statusOnlyPods struct {
	corev1client.PodsGetter
	lister corev1listers.PodLister
}

func (s statusOnlyPods) Pods(namespace string) corev1client.PodInterface {
	return statusOnlyPodInterface{PodInterface: s.PodsGetter.Pods(namespace), lister: s.lister.Pods(namespace)}
}

type statusOnlyPodInterface struct {
	corev1client.PodInterface
	lister corev1listers.PodNamespaceLister
}

func (p statusOnlyPodInterface) UpdateStatus(ctx context.Context, pod *corev1.Pod, opts metav1.UpdateOptions) (*corev1.Pod, error) {
	if current, err := p.lister.Get(pod.Name); err == nil && current.UID == pod.UID {
		merged := current.DeepCopy()
		merged.ResourceVersion = pod.ResourceVersion
		merged.Status = pod.Status
		pod = merged
	}
	return p.PodInterface.UpdateStatus(ctx, pod, opts)
}
