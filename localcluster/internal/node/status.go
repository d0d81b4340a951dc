package node

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const hostIP = "127.0.0.1"

// podState is what the node knows about a pod's run; podStatus turns it into the PodStatus a kubelet reports.
type podState struct {
	startTime    *metav1.Time
	sandboxReady bool
	initStatuses []corev1.ContainerStatus
	statuses     []corev1.ContainerStatus
	// initFailed: an init container failed and will not be restarted.
	initFailed bool
	// finished: every container has exited for good (no restart will follow).
	finished bool
	// reason/message of a pod-level failure, e.g. DeadlineExceeded.
	reason, message string
	// conditions last reported, whose lastTransitionTime stays while their status does not change.
	conditions []corev1.PodCondition
}

// podStatus is a pure function of the pod as the apiserver has it (for the scheduler's condition and the
// QoS class, which the node must keep) and the node's state.
func podStatus(api corev1.PodStatus, s podState) corev1.PodStatus {
	phase := podPhase(s)
	out := corev1.PodStatus{
		Phase:                 phase,
		Reason:                s.reason,
		Message:               s.message,
		HostIP:                hostIP,
		HostIPs:               []corev1.HostIP{{IP: hostIP}},
		PodIP:                 hostIP,
		PodIPs:                []corev1.PodIP{{IP: hostIP}},
		StartTime:             s.startTime,
		QOSClass:              api.QOSClass,
		InitContainerStatuses: copyStatuses(s.initStatuses),
		ContainerStatuses:     copyStatuses(s.statuses),
	}
	now := metav1.Now()
	initialized := !s.initFailed && allSucceeded(s.initStatuses)
	ready := initialized && phase == corev1.PodRunning && allReady(s.statuses)
	out.Conditions = []corev1.PodCondition{
		condition(corev1.PodReadyToStartContainers, s.sandboxReady && !s.finished, "", now),
		condition(corev1.PodInitialized, initialized, reasonIf(!initialized, "ContainersNotInitialized"), now),
		condition(corev1.ContainersReady, ready, notReadyReason(phase, ready), now),
		condition(corev1.PodReady, ready, notReadyReason(phase, ready), now),
	}
	for _, c := range api.Conditions {
		if c.Type == corev1.PodScheduled {
			out.Conditions = append(out.Conditions, c)
		}
	}
	keepTransitionTimes(out.Conditions, s.conditions)
	return out
}

func podPhase(s podState) corev1.PodPhase {
	switch {
	case s.reason != "" || s.initFailed:
		return corev1.PodFailed
	case !allSucceeded(s.initStatuses):
		return corev1.PodPending
	}
	for _, st := range s.statuses {
		if st.State.Waiting != nil && st.LastTerminationState.Terminated == nil {
			return corev1.PodPending
		}
	}
	if !s.finished {
		return corev1.PodRunning
	}
	for _, st := range s.statuses {
		if st.State.Terminated == nil || st.State.Terminated.ExitCode != 0 {
			return corev1.PodFailed
		}
	}
	return corev1.PodSucceeded
}

func allSucceeded(statuses []corev1.ContainerStatus) bool {
	for _, st := range statuses {
		if st.State.Terminated == nil || st.State.Terminated.ExitCode != 0 {
			return false
		}
	}
	return true
}

func allReady(statuses []corev1.ContainerStatus) bool {
	for _, st := range statuses {
		if !st.Ready {
			return false
		}
	}
	return true
}

func notReadyReason(phase corev1.PodPhase, ready bool) string {
	switch {
	case ready:
		return ""
	case phase == corev1.PodSucceeded || phase == corev1.PodFailed:
		return "PodCompleted"
	}
	return "ContainersNotReady"
}

func reasonIf(cond bool, reason string) string {
	if cond {
		return reason
	}
	return ""
}

func condition(t corev1.PodConditionType, ok bool, reason string, now metav1.Time) corev1.PodCondition {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	return corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: now}
}

// keepTransitionTimes keeps a condition's lastTransitionTime while its status is unchanged.
func keepTransitionTimes(conds, previous []corev1.PodCondition) {
	for i := range conds {
		for _, p := range previous {
			if p.Type == conds[i].Type && p.Status == conds[i].Status && !p.LastTransitionTime.IsZero() {
				conds[i].LastTransitionTime = p.LastTransitionTime
			}
		}
	}
}

func copyStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	if in == nil {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}
