package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"

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

	mu        sync.Mutex
	pod       *corev1.Pod
	state     podState
	pause     *sandbox.Pause
	running   map[string]*process
	logs      map[string][]*containerLog
	deleting  bool
	killTimer *time.Timer

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
		logs:     map[string][]*containerLog{},
		finished: make(chan struct{}),
	}
	r.state.initStatuses = initialStatuses(pod.Spec.InitContainers)
	r.state.statuses = initialStatuses(pod.Spec.Containers)
	return r
}

func initialStatuses(containers []corev1.Container) []corev1.ContainerStatus {
	out := make([]corev1.ContainerStatus, 0, len(containers))
	for _, c := range containers {
		out = append(out, corev1.ContainerStatus{
			Name:  c.Name,
			Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}},
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

// runContainer runs c until it succeeds or its restart policy gives up; it reports whether the last run
// succeeded. Init containers are restarted on failure unless the policy is Never.
func (r *podRuntime) runContainer(c corev1.Container, isInit bool, paths map[string]string) bool {
	policy := r.pod.Spec.RestartPolicy
	backoff := time.Second
	for restarts := int32(0); ; restarts++ {
		code := r.runOnce(c, isInit, restarts, paths)
		if r.ctx.Err() != nil {
			return false
		}
		succeeded := code == 0
		restart := (policy == corev1.RestartPolicyAlways && !isInit) ||
			(policy != corev1.RestartPolicyNever && !succeeded)
		if !restart {
			return succeeded
		}
		r.setWaiting(c.Name, "CrashLoopBackOff",
			fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", backoff, c.Name, r.pod.Name))
		r.event(c.Name, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container "+c.Name)
		select {
		case <-r.ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// runOnce starts one run of c, waits for it and records its end; it returns the exit code.
func (r *podRuntime) runOnce(c corev1.Container, isInit bool, restarts int32, paths map[string]string) int {
	containerID := fmt.Sprintf("localcluster://%s-%s-%d", shortUID(r.pod.UID), c.Name, restarts)
	logDir := filepath.Join(r.dir, "logs", c.Name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return r.startFailed(c, containerID, restarts, err)
	}
	log, err := newContainerLog(filepath.Join(logDir, fmt.Sprintf("%d.log", restarts)))
	if err != nil {
		return r.startFailed(c, containerID, restarts, err)
	}
	defer log.finish()
	r.mu.Lock()
	r.logs[c.Name] = append(r.logs[c.Name], log)
	r.mu.Unlock()

	env := containerEnv(r.pod, c, r.p.apiserverHost, r.p.apiserverPort)
	spec, targets, err := containerSpec(c, env, paths)
	if err != nil {
		return r.startFailed(c, containerID, restarts, err)
	}
	held, err := r.p.mountPoints.acquire(targets)
	if err != nil {
		return r.startFailed(c, containerID, restarts, fmt.Errorf("create mount point: %w", err))
	}
	defer r.p.mountPoints.release(held)
	specPath := filepath.Join(r.dir, "containers", fmt.Sprintf("%s-%d.json", c.Name, restarts))
	if err := writeJSON(specPath, spec); err != nil {
		return r.startFailed(c, containerID, restarts, err)
	}

	stdout, stderr := log.stream("stdout"), log.stream("stderr")
	r.mu.Lock()
	if r.ctx.Err() != nil {
		r.mu.Unlock()
		return 137
	}
	proc, err := startProcess(r.p.self, r.pause.PID(), specPath, env, stdout, stderr)
	if err != nil {
		r.mu.Unlock()
		return r.startFailed(c, containerID, restarts, err)
	}
	r.running[c.Name] = proc
	r.mu.Unlock()

	started := metav1.Now()
	r.event(c.Name, corev1.EventTypeNormal, "Pulled",
		fmt.Sprintf("Container image %q ignored: localcluster runs the command on the host", c.Image))
	r.event(c.Name, corev1.EventTypeNormal, "Created", "Created container: "+c.Name)
	r.event(c.Name, corev1.EventTypeNormal, "Started", "Started container "+c.Name)
	r.setStatus(c.Name, func(st *corev1.ContainerStatus) {
		st.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
		st.ContainerID = containerID
		st.RestartCount = restarts
		st.Started = ptr(true)
		st.Ready = !isInit
	})

	<-proc.done
	stdout.flush()
	stderr.flush()
	log.finish()
	r.mu.Lock()
	delete(r.running, c.Name)
	r.mu.Unlock()

	code := proc.exitCode
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	r.setStatus(c.Name, func(st *corev1.ContainerStatus) {
		st.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: int32(code), Reason: reason, StartedAt: started, FinishedAt: metav1.Now(), ContainerID: containerID,
		}}
		st.Started = ptr(false)
		st.Ready = false
	})
	if code == 0 {
		r.event(c.Name, corev1.EventTypeNormal, "Completed", fmt.Sprintf("Container %s exited with code 0", c.Name))
	} else {
		r.event(c.Name, corev1.EventTypeWarning, "Failed", fmt.Sprintf("Container %s exited with code %d", c.Name, code))
	}
	return code
}

func (r *podRuntime) startFailed(c corev1.Container, containerID string, restarts int32, err error) int {
	now := metav1.Now()
	r.event(c.Name, corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
	r.setStatus(c.Name, func(st *corev1.ContainerStatus) {
		st.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 128, Reason: "StartError", Message: err.Error(), StartedAt: now, FinishedAt: now,
			ContainerID: containerID,
		}}
		st.RestartCount = restarts
	})
	return 128
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
	for _, proc := range r.running {
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

func (r *podRuntime) containerSpec(name string) corev1.Container {
	for _, c := range append(append([]corev1.Container{}, r.pod.Spec.InitContainers...), r.pod.Spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	return corev1.Container{}
}

func (r *podRuntime) setWaiting(name, reason, message string) {
	r.setStatus(name, func(st *corev1.ContainerStatus) {
		if st.State.Terminated != nil {
			st.LastTerminationState = st.State
		}
		st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
		st.Ready = false
		st.Started = ptr(false)
	})
}

func (r *podRuntime) setStatus(name string, change func(*corev1.ContainerStatus)) {
	r.update(func(s *podState) {
		for _, list := range [][]corev1.ContainerStatus{s.initStatuses, s.statuses} {
			for i := range list {
				if list[i].Name == name {
					change(&list[i])
				}
			}
		}
	})
}

// update changes the state and publishes the resulting status at once.
func (r *podRuntime) update(change func(*podState)) {
	r.publishMu.Lock()
	defer r.publishMu.Unlock()
	r.mu.Lock()
	change(&r.state)
	pod := r.snapshotLocked()
	r.mu.Unlock()
	r.p.notify(pod)
}

func (r *podRuntime) publish() {
	r.update(func(*podState) {})
}

func (r *podRuntime) snapshot() *corev1.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

func (r *podRuntime) snapshotLocked() *corev1.Pod {
	pod := r.pod.DeepCopy()
	pod.Status = podStatus(r.pod.Status, r.state)
	return pod
}

func (r *podRuntime) setPod(pod *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	status := r.pod.Status
	r.pod = pod.DeepCopy()
	if len(pod.Status.Conditions) == 0 {
		r.pod.Status = status
	}
}

func (r *podRuntime) event(container, eventType, reason, message string) {
	r.p.containerEvent(r.pod, container, eventType, reason, message)
}

func (r *podRuntime) podEvent(eventType, reason, message string) {
	r.p.recorder.Event(r.pod, eventType, reason, message)
}

// containerEnv is the process environment: a minimal base, the container's resolved env (virtual-kubelet
// resolves valueFrom and envFrom), and the apiserver's real address for in-cluster clients.
func containerEnv(pod *corev1.Pod, c corev1.Container, apiserverHost, apiserverPort string) []string {
	env := map[string]string{
		"PATH":     "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME":     "/root",
		"HOSTNAME": pod.Name,
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if apiserverHost != "" {
		env["KUBERNETES_SERVICE_HOST"] = apiserverHost
		env["KUBERNETES_SERVICE_PORT"] = apiserverPort
		env["KUBERNETES_SERVICE_PORT_HTTPS"] = apiserverPort
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// containerSpec builds what the container init needs: argv with $(VAR) references expanded, the working
// directory and the bind mounts; and the host paths the mounts need to exist.
func containerSpec(c corev1.Container, env []string, paths map[string]string) (sandbox.ContainerSpec, []mountTarget, error) {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	mapping := expansion.MappingFuncFor(vars)
	var argv []string
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		argv = append(argv, expansion.Expand(a, mapping))
	}
	spec := sandbox.ContainerSpec{Argv: argv, WorkingDir: c.WorkingDir}
	if spec.WorkingDir == "" {
		spec.WorkingDir = "/"
	}
	var targets []mountTarget
	mounts := append([]corev1.VolumeMount{}, c.VolumeMounts...)
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(filepath.Clean(mounts[i].MountPath), "/") < strings.Count(filepath.Clean(mounts[j].MountPath), "/")
	})
	for _, m := range mounts {
		source, ok := paths[m.Name]
		if !ok {
			return spec, nil, fmt.Errorf("volumeMount %q: no volume of that name", m.Name)
		}
		sub := m.SubPath
		if m.SubPathExpr != "" {
			sub = expansion.Expand(m.SubPathExpr, mapping)
		}
		if sub != "" {
			source = filepath.Join(source, filepath.Clean("/"+sub))
			if _, err := os.Stat(source); os.IsNotExist(err) {
				if err := os.MkdirAll(source, 0o755); err != nil {
					return spec, nil, fmt.Errorf("subPath %s: %w", sub, err)
				}
			}
		}
		info, err := os.Stat(source)
		if err != nil {
			return spec, nil, fmt.Errorf("volumeMount %q: %w", m.Name, err)
		}
		target := filepath.Clean(m.MountPath)
		spec.Mounts = append(spec.Mounts, sandbox.Mount{Source: source, Target: target, ReadOnly: m.ReadOnly})
		targets = append(targets, mountTarget{path: target, isFile: !info.IsDir()})
	}
	if spec.WorkingDir != "/" {
		targets = append(targets, mountTarget{path: filepath.Clean(spec.WorkingDir)})
	}
	return spec, targets, nil
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func shortUID(uid types.UID) string {
	s := string(uid)
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

func ptr[T any](v T) *T { return &v }
