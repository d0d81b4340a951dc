package node

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func waiting(reason string) corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

func running() corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}, Ready: true}
}

func exited(code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
}

func TestPodPhase(t *testing.T) {
	crashLooping := waiting("CrashLoopBackOff")
	crashLooping.LastTerminationState = exited(1).State
	for name, tc := range map[string]struct {
		state podState
		want  corev1.PodPhase
	}{
		"creating":                {podState{statuses: []corev1.ContainerStatus{waiting("ContainerCreating")}}, corev1.PodPending},
		"init running":            {podState{initStatuses: []corev1.ContainerStatus{running()}, statuses: []corev1.ContainerStatus{waiting("PodInitializing")}}, corev1.PodPending},
		"init failed for good":    {podState{initFailed: true, initStatuses: []corev1.ContainerStatus{exited(1)}}, corev1.PodFailed},
		"running":                 {podState{statuses: []corev1.ContainerStatus{running()}}, corev1.PodRunning},
		"one done one running":    {podState{statuses: []corev1.ContainerStatus{exited(0), running()}}, corev1.PodRunning},
		"image pull error":        {podState{statuses: []corev1.ContainerStatus{running(), waiting("ErrImagePull")}}, corev1.PodPending},
		"crash loop is running":   {podState{statuses: []corev1.ContainerStatus{crashLooping}}, corev1.PodRunning},
		"all succeeded":           {podState{finished: true, statuses: []corev1.ContainerStatus{exited(0), exited(0)}}, corev1.PodSucceeded},
		"one failed":              {podState{finished: true, statuses: []corev1.ContainerStatus{exited(0), exited(2)}}, corev1.PodFailed},
		"deadline":                {podState{reason: "DeadlineExceeded", statuses: []corev1.ContainerStatus{running()}}, corev1.PodFailed},
		"exited but not finished": {podState{statuses: []corev1.ContainerStatus{exited(1)}}, corev1.PodRunning},
	} {
		if got := podPhase(tc.state); got != tc.want {
			t.Errorf("%s: phase %s, want %s", name, got, tc.want)
		}
	}
}

func TestPodStatusKeepsSchedulerConditionAndQOS(t *testing.T) {
	api := corev1.PodStatus{
		QOSClass:   corev1.PodQOSBestEffort,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
	}
	got := podStatus(api, podState{sandboxReady: true, statuses: []corev1.ContainerStatus{running()}})
	if got.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("QOS class %q", got.QOSClass)
	}
	conds := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range got.Conditions {
		conds[c.Type] = c.Status
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReady, corev1.ContainersReady, corev1.PodInitialized, corev1.PodReadyToStartContainers} {
		if conds[ct] != corev1.ConditionTrue {
			t.Errorf("condition %s = %q, want True", ct, conds[ct])
		}
	}
}

func TestConditionTransitionTimeStaysWhileStatusIsUnchanged(t *testing.T) {
	first := podStatus(corev1.PodStatus{}, podState{sandboxReady: true, statuses: []corev1.ContainerStatus{running()}})
	earlier := first.Conditions[0].LastTransitionTime.Add(-time.Hour)
	for i := range first.Conditions {
		first.Conditions[i].LastTransitionTime = metav1.NewTime(earlier)
	}
	second := podStatus(corev1.PodStatus{}, podState{sandboxReady: true, statuses: []corev1.ContainerStatus{running(), running()}, conditions: first.Conditions})
	for _, c := range second.Conditions {
		if !c.LastTransitionTime.Time.Equal(earlier) {
			t.Errorf("%s transition time moved although its status did not change", c.Type)
		}
	}
}
