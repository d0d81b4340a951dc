package kubernetes

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// PodStatus is where a task's pod stands, as far as the task is concerned.
type PodStatus string

const (
	// PodPending: not scheduled, or the base container has not started.
	PodPending PodStatus = "pending"
	// PodRunning: the base container runs.
	PodRunning PodStatus = "running"
	// PodSucceeded: the base container exited 0.
	PodSucceeded PodStatus = "succeeded"
	// PodFailed: the base container exited non-zero.
	PodFailed PodStatus = "failed"
	// PodError: the base container will never finish: the pod was deleted,
	// failed (evicted, deadline), could not pull its image, or hit the
	// schedule or startup timeout.
	PodError PodStatus = "error"
)

// Reasons of PodError events that podflow itself decides.
const (
	ReasonPodDeleted      = "PodDeleted"
	ReasonScheduleTimeout = "ScheduleTimeout"
	ReasonStartupTimeout  = "StartupTimeout"
)

// failFastReasons are waiting reasons after which waiting is pointless.
var failFastReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"ErrImageNeverPull": true, "CrashLoopBackOff": true,
}

// PodEvent is the outcome of evaluating a pod. It is the pod trigger's event
// payload (JSON) and what the resume step reads.
type PodEvent struct {
	Status    PodStatus `json:"status"`
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	// ExitCode of the base container, once it terminated.
	ExitCode *int32 `json:"exit_code,omitempty"`
	// Reason is the container's or pod's reason (Error, OOMKilled,
	// ErrImagePull, Evicted, …) or one of podflow's Reason… constants.
	Reason string `json:"reason,omitempty"`
	// Message is the termination message or the explanation of an error.
	Message string `json:"message,omitempty"`
	// RecheckAt is when a pending pod must be evaluated again even without a
	// change (a schedule or startup deadline); zero: only on change.
	RecheckAt time.Time `json:"-"`
	// LogCursors are where a deferred task's earlier resumes stopped copying
	// each container's log (logging_interval): the trigger passes its own
	// through, so the next resume neither repeats nor loses a line.
	LogCursors LogCursors `json:"log_cursors,omitempty"`
}

// Done reports whether the event ends the wait.
func (e PodEvent) Done() bool {
	return e.Status == PodSucceeded || e.Status == PodFailed || e.Status == PodError
}

// Timeouts are a pod task's waiting limits, measured from the pod's own
// timestamps: schedule from creation to the PodScheduled condition, startup
// from scheduling (or the last init container's end) to the base container's
// start. Zero means no limit.
type Timeouts struct {
	Schedule time.Duration
	Startup  time.Duration
}

// DeletedEvent is the event for a pod that no longer exists.
func DeletedEvent(namespace, name string) PodEvent {
	return PodEvent{Status: PodError, Namespace: namespace, Name: name, Reason: ReasonPodDeleted,
		Message: "pod deleted"}
}

// EvaluatePod decides, from the pod alone and the current time, whether the
// task's wait is over and how it ended. It does no I/O, so the synchronous
// launcher and the triggerer share it; a pod that is running is never timed
// out, however late it is evaluated. A nil pod has been deleted.
func EvaluatePod(pod *corev1.Pod, now time.Time, t Timeouts) (done bool, ev PodEvent) {
	if pod == nil {
		return true, DeletedEvent("", "")
	}
	ev = evaluate(pod, now, t)
	ev.Namespace, ev.Name = pod.Namespace, pod.Name
	return ev.Done(), ev
}

func evaluate(pod *corev1.Pod, now time.Time, t Timeouts) PodEvent {
	base := baseStatus(pod)
	if base != nil && base.State.Terminated != nil {
		term := base.State.Terminated
		if deletedBefore(pod, term.FinishedAt.Time) {
			return DeletedEvent("", "")
		}
		code := term.ExitCode
		if code == 0 {
			return PodEvent{Status: PodSucceeded, ExitCode: &code, Reason: term.Reason}
		}
		return PodEvent{Status: PodFailed, ExitCode: &code, Reason: term.Reason, Message: strings.TrimSpace(term.Message)}
	}
	if pod.DeletionTimestamp != nil {
		return DeletedEvent("", "")
	}
	if ev, failed := failedPod(pod); failed {
		return ev
	}
	if ev, stuck := failFastWaiting(pod); stuck {
		return ev
	}
	if base != nil && base.State.Running != nil {
		return PodEvent{Status: PodRunning}
	}

	scheduled, scheduledAt, unschedulable := podScheduled(pod)
	if !scheduled {
		if t.Schedule <= 0 || pod.CreationTimestamp.IsZero() {
			return PodEvent{Status: PodPending}
		}
		deadline := pod.CreationTimestamp.Add(t.Schedule)
		if now.Before(deadline) {
			return PodEvent{Status: PodPending, RecheckAt: deadline}
		}
		msg := fmt.Sprintf("pod was not scheduled within the schedule timeout (%s)", t.Schedule)
		if unschedulable != "" {
			msg += ": " + unschedulable
		}
		return PodEvent{Status: PodError, Reason: ReasonScheduleTimeout, Message: msg}
	}

	startFrom, initRunning := startupStart(pod, scheduledAt)
	if initRunning || t.Startup <= 0 {
		return PodEvent{Status: PodPending}
	}
	deadline := startFrom.Add(t.Startup)
	if now.Before(deadline) {
		return PodEvent{Status: PodPending, RecheckAt: deadline}
	}
	msg := fmt.Sprintf("base container did not start within the startup timeout (%s)", t.Startup)
	if w := waitingSummary(pod); w != "" {
		msg += ": " + w
	}
	return PodEvent{Status: PodError, Reason: ReasonStartupTimeout, Message: msg}
}

// baseStatus is the status of the base container (named "base", else the
// first container of the spec).
func baseStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	name := BaseContainerName
	if c := baseContainer(pod); c != nil {
		name = c.Name
	}
	return containerStatus(pod.Status.ContainerStatuses, name)
}

func containerStatus(statuses []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range statuses {
		if statuses[i].Name == name {
			return &statuses[i]
		}
	}
	return nil
}

// deletedBefore reports whether deletion of the pod was requested before t
// (so a container that ended at t was ended by the deletion).
func deletedBefore(pod *corev1.Pod, t time.Time) bool {
	if pod.DeletionTimestamp == nil {
		return false
	}
	requested := pod.DeletionTimestamp.Time
	if pod.DeletionGracePeriodSeconds != nil {
		requested = requested.Add(-time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second)
	}
	return !t.Before(requested.Truncate(time.Second))
}

// failedPod: the pod failed without its base container terminating
// (eviction, active deadline, a failed init container).
func failedPod(pod *corev1.Pod) (PodEvent, bool) {
	for _, s := range pod.Status.InitContainerStatuses {
		if term := s.State.Terminated; term != nil && term.ExitCode != 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			code := term.ExitCode
			return PodEvent{Status: PodError, ExitCode: &code, Reason: term.Reason,
				Message: fmt.Sprintf("init container %s exited with code %d%s", s.Name, code, suffixed(term.Message))}, true
		}
	}
	if pod.Status.Phase != corev1.PodFailed {
		return PodEvent{}, false
	}
	reason := pod.Status.Reason
	if reason == "" {
		reason = "Failed"
	}
	return PodEvent{Status: PodError, Reason: reason,
		Message: fmt.Sprintf("pod failed (%s)%s", reason, suffixed(pod.Status.Message))}, true
}

func suffixed(msg string) string {
	if msg = strings.TrimSpace(msg); msg == "" {
		return ""
	}
	return ": " + msg
}

// failFastWaiting finds a container stuck on an image pull or crash loop.
func failFastWaiting(pod *corev1.Pod) (PodEvent, bool) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			if w := s.State.Waiting; w != nil && failFastReasons[w.Reason] {
				return PodEvent{Status: PodError, Reason: w.Reason,
					Message: fmt.Sprintf("container %s: %s%s", s.Name, w.Reason, suffixed(w.Message))}, true
			}
		}
	}
	return PodEvent{}, false
}

// podScheduled returns whether and when the pod was scheduled, or why not.
func podScheduled(pod *corev1.Pod) (scheduled bool, at time.Time, why string) {
	for _, c := range pod.Status.Conditions {
		if c.Type != corev1.PodScheduled {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return true, c.LastTransitionTime.Time, ""
		}
		return false, time.Time{}, strings.TrimSpace(c.Reason + ": " + c.Message)
	}
	if pod.Spec.NodeName != "" {
		return true, pod.CreationTimestamp.Time, ""
	}
	return false, time.Time{}, ""
}

// startupStart is when the base container's startup clock starts: when the
// pod was scheduled, or when its last init container finished. While an init
// container runs, the clock is stopped (the pod has started).
func startupStart(pod *corev1.Pod, scheduledAt time.Time) (time.Time, bool) {
	from := scheduledAt
	if from.IsZero() {
		from = pod.CreationTimestamp.Time
	}
	for _, s := range pod.Status.InitContainerStatuses {
		switch {
		case s.State.Running != nil:
			return from, true
		case s.State.Terminated != nil && s.State.Terminated.FinishedAt.After(from):
			from = s.State.Terminated.FinishedAt.Time
		}
	}
	return from, false
}

// waitingSummary says why containers are waiting, e.g. "base: ContainerCreating".
func waitingSummary(pod *corev1.Pod) string {
	var parts []string
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			if w := s.State.Waiting; w != nil && w.Reason != "" {
				parts = append(parts, s.Name+": "+w.Reason+suffixed(w.Message))
			}
		}
	}
	return strings.Join(parts, "; ")
}
