package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/podflow/podflow/localcluster/internal/sandbox"
)

// provider is the virtual-kubelet provider: it keeps one podRuntime per pod.
type provider struct {
	client      kubernetes.Interface
	recorder    record.EventRecorder
	nodeName    string
	podsDir     string
	self        string
	volumes     volumes
	mountPoints *mountPoints

	apiserverHost, apiserverPort string
	// privateRoot gives every container a copy-on-write view of the host's root (see sandbox).
	privateRoot bool
	// hiddenDirs are masked in every private root.
	hiddenDirs []string

	mu       sync.Mutex
	pods     map[string]*podRuntime
	notifyCb func(*corev1.Pod)
	stopping bool
}

func newProvider(client kubernetes.Interface, recorder record.EventRecorder, cfg Config) (*provider, error) {
	self, err := sandbox.HelperPath()
	if err != nil {
		return nil, err
	}
	return &provider{
		client:        client,
		recorder:      recorder,
		nodeName:      cfg.Name,
		podsDir:       cfg.PodsDir,
		self:          self,
		volumes:       volumes{client: client, nodeName: cfg.Name},
		mountPoints:   newMountPoints(defaultMountPointRegistry),
		apiserverHost: cfg.APIServerHost,
		apiserverPort: cfg.APIServerPort,
		privateRoot:   !cfg.HostRootfs,
		hiddenDirs:    cfg.HiddenDirs,
		pods:          map[string]*podRuntime{},
	}, nil
}

func podKey(namespace, name string) string { return namespace + "/" + name }

// CreatePod starts running the pod and returns at once; its progress is published through NotifyPods.
func (p *provider) CreatePod(_ context.Context, pod *corev1.Pod) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return errors.New("node is shutting down")
	}
	key := podKey(pod.Namespace, pod.Name)
	if r, ok := p.pods[key]; ok && r.uid() == pod.UID {
		return nil
	}
	r := newPodRuntime(p, pod.DeepCopy())
	p.pods[key] = r
	go r.run()
	return nil
}

// UpdatePod restarts nothing in a running pod (as a kubelet does not restart containers for label or
// annotation changes; the spec of a pod's containers is immutable), but remembers its new labels and
// annotations: the status updates this node sends carry the whole object. A pod that reuses the name of one still
// on this node (another UID) is a new pod.
func (p *provider) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	r := p.lookup(pod.Namespace, pod.Name)
	if r == nil || r.uid() != pod.UID {
		return p.CreatePod(ctx, pod)
	}
	r.setMeta(pod) // so statuses published later keep the new labels and annotations
	return nil
}

// DeletePod SIGTERMs the pod's processes and SIGKILLs them after the grace period. The pod object is
// removed from the apiserver as soon as they have all exited (see removeDeleted).
func (p *provider) DeletePod(_ context.Context, pod *corev1.Pod) error {
	r := p.lookup(pod.Namespace, pod.Name)
	if r == nil {
		return errdefs.NotFoundf("pod %s/%s is not on this node", pod.Namespace, pod.Name)
	}
	grace := r.gracePeriod()
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	}
	r.kill(grace, true)
	select {
	case <-r.finished:
		// Already over (e.g. it had completed): remove it now.
		p.removeDeleted(r)
	default:
	}
	return nil
}

// removeDeleted forgets a deleted pod and removes its object and directory.
func (p *provider) removeDeleted(r *podRuntime) {
	p.mu.Lock()
	key := podKey(r.pod.Namespace, r.pod.Name)
	if p.pods[key] == r {
		delete(p.pods, key)
	}
	stopping := p.stopping
	p.mu.Unlock()
	if stopping {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		opts := metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0)),
			Preconditions: metav1.NewUIDPreconditions(string(r.pod.UID))}
		err := p.client.CoreV1().Pods(r.pod.Namespace).Delete(ctx, r.pod.Name, opts)
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			fmt.Fprintf(os.Stderr, "localcluster: remove deleted pod %s/%s: %v\n", r.pod.Namespace, r.pod.Name, err)
		}
		_ = os.RemoveAll(r.dir)
	}()
}

func (p *provider) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	r := p.lookup(namespace, name)
	if r == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", namespace, name)
	}
	return r.snapshot(), nil
}

func (p *provider) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := p.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

func (p *provider) GetPods(context.Context) ([]*corev1.Pod, error) {
	p.mu.Lock()
	runtimes := make([]*podRuntime, 0, len(p.pods))
	for _, r := range p.pods {
		runtimes = append(runtimes, r)
	}
	p.mu.Unlock()
	pods := make([]*corev1.Pod, 0, len(runtimes))
	for _, r := range runtimes {
		pods = append(pods, r.snapshot())
	}
	return pods, nil
}

// NotifyPods registers the callback every status change is pushed through.
func (p *provider) NotifyPods(_ context.Context, cb func(*corev1.Pod)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notifyCb = cb
}

// notify pushes a pod's status, unless r has been replaced by a newer pod of the same name, whose status
// the old one must not overwrite.
func (p *provider) notify(r *podRuntime, pod *corev1.Pod) {
	p.mu.Lock()
	cb := p.notifyCb
	current := p.pods[podKey(pod.Namespace, pod.Name)] == r
	p.mu.Unlock()
	if cb != nil && current {
		cb(pod)
	}
}

func (p *provider) lookup(namespace, name string) *podRuntime {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pods[podKey(namespace, name)]
}

// stopAll kills every pod at once, at shutdown, and waits until their processes are gone.
func (p *provider) stopAll() {
	p.mu.Lock()
	p.stopping = true
	runtimes := make([]*podRuntime, 0, len(p.pods))
	for _, r := range p.pods {
		runtimes = append(runtimes, r)
	}
	p.mu.Unlock()
	for _, r := range runtimes {
		r.kill(0, false)
	}
	for _, r := range runtimes {
		select {
		case <-r.finished:
		case <-time.After(10 * time.Second):
		}
	}
	p.mountPoints.releaseAll()
}

func (p *provider) containerEvent(pod *corev1.Pod, container, eventType, reason, message string) {
	ref, err := reference.GetReference(scheme.Scheme, pod)
	if err != nil {
		p.recorder.Event(pod, eventType, reason, message)
		return
	}
	if container != "" {
		ref.FieldPath = containerFieldPath(pod, container)
	}
	p.recorder.Event(ref, eventType, reason, message)
}

func containerFieldPath(pod *corev1.Pod, container string) string {
	for _, c := range pod.Spec.InitContainers {
		if c.Name == container {
			return fmt.Sprintf("spec.initContainers{%s}", container)
		}
	}
	return fmt.Sprintf("spec.containers{%s}", container)
}

// GetContainerLogs serves `kubectl logs` (follow, timestamps, sinceTime, tailLines, limitBytes, previous).
func (p *provider) GetContainerLogs(ctx context.Context, namespace, podName, containerName string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	r := p.lookup(namespace, podName)
	if r == nil {
		return nil, errdefs.NotFoundf("pod %s/%s is not on this node", namespace, podName)
	}
	r.mu.Lock()
	runs := r.logs[containerName]
	r.mu.Unlock()
	idx := len(runs) - 1
	if opts.Previous {
		idx--
	}
	if idx < 0 {
		return nil, errdefs.InvalidInputf("container %q in pod %q is waiting to start", containerName, podName)
	}
	return runs[idx].read(ctx, opts)
}

// AttachToContainer is not supported: containers have no stdin and their output goes to the log.
func (p *provider) AttachToContainer(context.Context, string, string, string, api.AttachIO) error {
	return errdefs.InvalidInput("attach is not supported by localcluster; use logs -f or exec")
}

func (p *provider) GetStatsSummary(context.Context) (*statsv1alpha1.Summary, error) {
	return &statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: p.nodeName, StartTime: metav1.Now()}}, nil
}

func (p *provider) GetMetricsResource(context.Context) ([]*dto.MetricFamily, error) {
	return nil, nil
}

// PortForward serves `kubectl port-forward`: pods share the host's network, so the pod's port is the
// host's loopback port.
func (p *provider) PortForward(ctx context.Context, namespace, pod string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	if p.lookup(namespace, pod) == nil {
		return errdefs.NotFoundf("pod %s/%s is not on this node", namespace, pod)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(hostIP, strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("connect to port %d of pod %s/%s: %w", port, namespace, pod, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, stream); done <- struct{}{} }()
	go func() { _, _ = io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}
