package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/localcluster/internal/sandbox"
)

// podRuntime runs one pod:
//
//	Pending(ContainerCreating) ─ volumes ─ pause ─▶ init containers, one by one ─▶ containers, together
//	      │ image ":missing": Waiting ErrImagePull → ImagePullBackOff, for ever        │
//	      └───────────── kill (delete, deadline, shutdown): SIGTERM, SIGKILL after grace ┴─▶ teardown
//
// Every change of state is published to the apiserver at once through the provider's notify callback.
type podRuntime struct {
	p   *provider
	dir string

	ctx    context.Context // cancelled when the pod is being killed
	cancel context.CancelFunc

	pod *corev1.Pod // as created, with env resolved; never modified

	mu    sync.Mutex
	state podState
	// meta holds the pod's current labels and annotations: they may change
	// after creation (kubectl label), and every status this node publishes
	// carries the whole object, so it must carry the current ones.
	labels      map[string]string
	annotations map[string]string
	pause       *sandbox.Pause
	running     map[string]*process
	envs        map[string][]string // the environment each container's current run started with
	logs        map[string][]*containerLog
	deleting    bool
	killTimer   *time.Timer

	publishMu sync.Mutex
	finished  chan struct{}
}

func newPodRuntime(p *provider, pod *corev1.Pod) *podRuntime {
	ctx, cancel := context.WithCancel(context.Background())
	r := &podRuntime{
		p:        p,
		dir:      filepath.Join(p.podsDir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID)),
		ctx:      ctx,
		cancel:   cancel,
		pod:      pod,
		running:  map[string]*process{},
		envs:     map[string][]string{},
		logs:     map[string][]*containerLog{},
		finished: make(chan struct{}),
	}
	r.state.initStatuses = initialStatuses(pod.Spec.InitContainers, "ContainerCreating")
	waitingFor := "ContainerCreating"
	if len(pod.Spec.InitContainers) > 0 {
		waitingFor = "PodInitializing"
	}
	r.state.statuses = initialStatuses(pod.Spec.Containers, waitingFor)
	return r
}

func initialStatuses(containers []corev1.Container, reason string) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(containers))
	for _, c := range containers {
		out = append(out, corev1.ContainerStatus{
			Name:  c.Name,
			Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}},
		})
	}
	return out
}

func (r *podRuntime) run() {
	defer r.teardown()
	now := metav1.Now()
	r.update(func(s *podState) { s.startTime = &now })
	r.startDeadline()

	missing := r.markMissingImages()
	paths, ok := r.prepareVolumes()
	if !ok {
		return
	}
	if err := r.startPause(); err != nil {
		r.fail("SandboxFailed", err.Error())
		return
	}
	for _, c := range r.pod.Spec.InitContainers {
		if missing[c.Name] {
			<-r.ctx.Done()
			return
		}
		if !r.runContainer(c, true, paths) {
			if r.ctx.Err() == nil {
				r.update(func(s *podState) { s.initFailed = true })
			}
			return
		}
	}
	var wg sync.WaitGroup
	for _, c := range r.pod.Spec.Containers {
		if missing[c.Name] {
			continue
		}
		wg.Go(func() { r.runContainer(c, false, paths) })
	}
	wg.Wait()
	if len(missing) > 0 {
		// A container whose image cannot be pulled never starts: the pod stays Pending until deleted.
		<-r.ctx.Done()
	}
}

// markMissingImages puts containers whose image tag is "missing" into ErrImagePull, then ImagePullBackOff.
func (r *podRuntime) markMissingImages() map[string]bool {
	missing := map[string]bool{}
	for _, c := range append(append([]corev1.Container{}, r.pod.Spec.InitContainers...), r.pod.Spec.Containers...) {
		if !imageMissing(c.Image) {
			continue
		}
		missing[c.Name] = true
		msg := fmt.Sprintf("failed to pull image %q: image not found (localcluster treats the tag \"missing\" as absent)", c.Image)
		r.setWaiting(c.Name, "ErrImagePull", msg)
		r.event(c.Name, corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.Image))
		r.event(c.Name, corev1.EventTypeWarning, "Failed", "Failed to pull image: "+msg)
		r.event(c.Name, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
	}
	if len(missing) > 0 {
		go func() {
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(time.Second):
			}
			for name := range missing {
				image := r.containerSpec(name).Image
				r.setWaiting(name, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q", image))
				r.event(name, corev1.EventTypeNormal, "BackOff", fmt.Sprintf("Back-off pulling image %q", image))
				r.event(name, corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff")
			}
		}()
	}
	return missing
}

// prepareVolumes materialises the volumes, retrying (as a kubelet does) while a secret, config map or
// claim is not there yet.
func (r *podRuntime) prepareVolumes() (map[string]string, bool) {
	backoff := 200 * time.Millisecond
	lastErr := ""
	for {
		paths, err := r.p.volumes.materialize(r.ctx, r.pod, filepath.Join(r.dir, "volumes"))
		if err == nil {
			return paths, true
		}
		if r.ctx.Err() != nil {
			return nil, false
		}
		if err.Error() != lastErr {
			lastErr = err.Error()
			r.podEvent(corev1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: "+lastErr)
		}
		select {
		case <-r.ctx.Done():
			return nil, false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (r *podRuntime) startPause() error {
	if err := os.MkdirAll(filepath.Join(r.dir, "containers"), 0o755); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return r.ctx.Err()
	}
	pause, err := sandbox.StartPause(r.p.self, os.Stderr)
	if err != nil {
		return err
	}
	r.pause = pause
	r.state.sandboxReady = true
	go r.publish()
	return nil
}

// kill stops the pod: SIGTERM to every container, SIGKILL to the whole pod after grace.
func (r *podRuntime) kill(grace time.Duration, deleting bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if deleting {
		r.deleting = true
	}
	r.cancel()
	if grace <= 0 {
		if r.pause != nil {
			go r.pause.Kill()
		}
		return
	}
	for name, proc := range r.running {
		r.event(name, corev1.EventTypeNormal, "Killing", "Stopping container "+name)
		proc.signal(syscall.SIGTERM)
	}
	if r.killTimer == nil {
		r.killTimer = time.AfterFunc(grace, func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			if r.pause != nil {
				go r.pause.Kill()
			}
		})
	}
}

func (r *podRuntime) startDeadline() {
	if r.pod.Spec.ActiveDeadlineSeconds == nil {
		return
	}
	deadline := time.Duration(*r.pod.Spec.ActiveDeadlineSeconds) * time.Second
	go func() {
		select {
		case <-r.ctx.Done():
		case <-time.After(deadline):
			msg := "Pod was active on the node longer than the specified deadline"
			r.podEvent(corev1.EventTypeNormal, "DeadlineExceeded", msg)
			r.update(func(s *podState) { s.reason, s.message = "DeadlineExceeded", msg })
			r.kill(r.gracePeriod(), false)
		}
	}()
}

func (r *podRuntime) gracePeriod() time.Duration {
	if r.pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*r.pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second
}

func (r *podRuntime) fail(reason, message string) {
	r.podEvent(corev1.EventTypeWarning, reason, message)
	r.update(func(s *podState) { s.reason, s.message = reason, message })
}

// teardown runs when every container has ended: the pause process (and with it anything left in the pod)
// is killed, the final status published, and a deleted pod's object removed at once.
func (r *podRuntime) teardown() {
	r.mu.Lock()
	pause := r.pause
	if r.killTimer != nil {
		r.killTimer.Stop()
	}
	r.mu.Unlock()
	if pause != nil {
		pause.Kill()
	}
	r.terminateWaiting()
	r.update(func(s *podState) {
		s.finished = true
		s.sandboxReady = false
	})
	r.mu.Lock()
	deleting := r.deleting
	r.mu.Unlock()
	if deleting {
		r.p.removeDeleted(r)
	}
	close(r.finished)
}

// terminateWaiting marks containers that never ran, or were waiting to restart, as terminated when the pod
// is killed, as a kubelet does.
func (r *podRuntime) terminateWaiting() {
	if r.ctx.Err() == nil {
		return
	}
	now := metav1.Now()
	r.update(func(s *podState) {
		for _, list := range [][]corev1.ContainerStatus{s.initStatuses, s.statuses} {
			for i := range list {
				if list[i].State.Waiting != nil || list[i].State.Running != nil {
					list[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 137, Reason: "ContainerStatusUnknown", FinishedAt: now,
						Message: "The container was not running when the pod was stopped",
					}}
					list[i].Ready = false
				}
			}
		}
	})
}
