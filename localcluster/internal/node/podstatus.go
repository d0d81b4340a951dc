package node

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// setWaiting, setStatus and update change what the node knows about a pod; every change is published at
// once (publishMu keeps the publications in order).
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
	r.p.notify(r, pod)
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
	if r.labels != nil {
		pod.Labels = copyMap(r.labels)
	}
	if r.annotations != nil {
		pod.Annotations = copyMap(r.annotations)
	}
	pod.Status = podStatus(r.pod.Status, r.state)
	r.state.conditions = pod.Status.Conditions
	return pod
}

// uid identifies the pod; r.pod itself never changes after creation.
func (r *podRuntime) uid() types.UID { return r.pod.UID }

func (r *podRuntime) event(container, eventType, reason, message string) {
	r.p.containerEvent(r.pod, container, eventType, reason, message)
}

func (r *podRuntime) podEvent(eventType, reason, message string) {
	r.p.recorder.Event(r.pod, eventType, reason, message)
}

// setMeta records the pod's current labels and annotations.
func (r *podRuntime) setMeta(pod *corev1.Pod) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.labels, r.annotations = copyMap(pod.Labels), copyMap(pod.Annotations)
	if r.labels == nil {
		r.labels = map[string]string{}
	}
	if r.annotations == nil {
		r.annotations = map[string]string{}
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
