package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"

	"github.com/podflow/podflow/localcluster/internal/sandbox"
)

// runContainer runs c until it succeeds or its restart policy gives up; it reports whether the last run
// succeeded. Init containers are restarted on failure unless the policy is Never.
func (r *podRuntime) runContainer(c corev1.Container, isInit bool, paths map[string]string) bool {
	policy := r.pod.Spec.RestartPolicy
	backoff := time.Second
	for restarts := int32(0); ; restarts++ {
		env, ok := r.waitForEnv(c)
		if !ok {
			return false
		}
		code := r.runOnce(c, isInit, restarts, paths, env)
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

// waitForEnv resolves c's environment, waiting (CreateContainerConfigError) while a config map or secret
// it needs is missing, as a kubelet does. It reports false when the pod is killed meanwhile.
func (r *podRuntime) waitForEnv(c corev1.Container) ([]string, bool) {
	backoff := 500 * time.Millisecond
	lastErr := ""
	for {
		resolved, err := r.p.resolveEnv(r.ctx, r.pod, c)
		if err == nil {
			return processEnv(r.pod, resolved, r.p.apiserverHost, r.p.apiserverPort), true
		}
		if r.ctx.Err() != nil {
			return nil, false
		}
		if err.Error() != lastErr {
			lastErr = err.Error()
			r.setWaiting(c.Name, "CreateContainerConfigError", lastErr)
			r.event(c.Name, corev1.EventTypeWarning, "Failed", "Error: "+lastErr)
		}
		select {
		case <-r.ctx.Done():
			return nil, false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// runOnce starts one run of c, waits for it and records its end; it returns the exit code.
func (r *podRuntime) runOnce(c corev1.Container, isInit bool, restarts int32, paths map[string]string, env []string) int {
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

	spec, targets, err := containerSpec(c, env, paths)
	if err != nil {
		return r.startFailed(c, containerID, restarts, err)
	}
	termination, err := r.terminationLog(c, restarts)
	if err != nil {
		return r.startFailed(c, containerID, restarts, err)
	}
	if termination != "" {
		spec.Mounts = append(spec.Mounts, sandbox.Mount{Source: termination, Target: c.TerminationMessagePath})
		targets = append(targets, mountTarget{path: filepath.Clean(c.TerminationMessagePath), isFile: true})
	}
	spec.UID, spec.GID = runAs(r.pod, c)
	if r.p.privateRoot {
		// Mount points are made inside the container's own root (and its own /dev, the termination log's
		// default place), not on the host; except under /proc and /sys, which it shares with the host.
		spec.RootScratch = filepath.Join(r.dir, "containers", fmt.Sprintf("%s-%d.root", c.Name, restarts))
		spec.MaskPaths = r.p.hiddenDirs
		targets = onHostMounts(targets)
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
	r.envs[c.Name] = env
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
	message := terminationMessage(c, termination, log.path, code)
	r.setStatus(c.Name, func(st *corev1.ContainerStatus) {
		st.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: int32(code), Reason: reason, Message: message, StartedAt: started, FinishedAt: metav1.Now(),
			ContainerID: containerID,
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

func (r *podRuntime) containerSpec(name string) corev1.Container {
	for _, c := range append(append([]corev1.Container{}, r.pod.Spec.InitContainers...), r.pod.Spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	return corev1.Container{}
}

// onHostMounts keeps the mount targets that lie in a host mount a private root shares (/proc, /sys). /dev is
// the container's own tmpfs (see sandbox.privateDev): mount points there are made inside it.
func onHostMounts(targets []mountTarget) []mountTarget {
	var kept []mountTarget
	for _, t := range targets {
		for _, shared := range []string{"/proc/", "/sys/"} {
			if strings.HasPrefix(t.path, shared) {
				kept = append(kept, t)
				break
			}
		}
	}
	return kept
}

// terminationLog creates the file bind-mounted at the container's terminationMessagePath (so a process
// writing /dev/termination-log writes it, not the host's /dev); "" when the container has no such path.
func (r *podRuntime) terminationLog(c corev1.Container, restarts int32) (string, error) {
	if c.TerminationMessagePath == "" {
		return "", nil
	}
	path := filepath.Join(r.dir, "containers", fmt.Sprintf("%s-%d.termination-log", c.Name, restarts))
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		return "", fmt.Errorf("create termination log: %w", err)
	}
	return path, os.Chmod(path, 0o666)
}

// terminationMessage is what a kubelet reports as the terminated state's message: the termination log
// (at most 4 KiB) or, with FallbackToLogsOnError and a failure, the end of the container's log.
func terminationMessage(c corev1.Container, termination, logPath string, code int) string {
	const maxBytes = 4096
	if termination != "" {
		if data, err := os.ReadFile(termination); err == nil && len(data) > 0 {
			return string(data[:min(len(data), maxBytes)])
		}
	}
	if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError || code == 0 {
		return ""
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		return ""
	}
	var text strings.Builder
	for _, raw := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if raw != "" {
			text.WriteString(parseLogLine(raw).render(false))
		}
	}
	out := text.String()
	if len(out) > 2048 {
		out = out[len(out)-2048:]
	}
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

// runAs is the user and group a container's processes run as: the container's securityContext, else the
// pod's; unset means root, as the image's user is unknown.
func runAs(pod *corev1.Pod, c corev1.Container) (uid, gid *int64) {
	if psc := pod.Spec.SecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	if csc := c.SecurityContext; csc != nil {
		if csc.RunAsUser != nil {
			uid = csc.RunAsUser
		}
		if csc.RunAsGroup != nil {
			gid = csc.RunAsGroup
		}
	}
	if uid != nil && gid == nil {
		gid = ptr(int64(0))
	}
	return uid, gid
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
