package kubernetes

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/operators"
)

var t0 = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

// podAt builds a pod created at t0 with the given status tweaks.
func podAt(mut func(p *corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", CreationTimestamp: metav1.NewTime(t0)},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{
			{Name: "base"}, {Name: SidecarContainerName}}},
	}
	if mut != nil {
		mut(p)
	}
	return p
}

func scheduled(at time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.NodeName = "node"
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
			Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at)})
	}
}

func baseState(s corev1.ContainerState) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: "base", State: s})
	}
}

func all(fs ...func(*corev1.Pod)) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		for _, f := range fs {
			f(p)
		}
	}
}

func terminated(code int32, reason, msg string, at time.Time) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg,
		FinishedAt: metav1.NewTime(at)}}
}

func TestEvaluatePod(t *testing.T) {
	t.Parallel()
	timeouts := Timeouts{Schedule: 60 * time.Second, Startup: 120 * time.Second}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0)}}
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "details"}}
	}
	tests := []struct {
		name       string
		pod        *corev1.Pod
		now        time.Time
		wantStatus PodStatus
		wantReason string
		wantCode   int32
		wantMsg    string
		recheck    time.Time
	}{
		{"just created", podAt(nil), t0.Add(time.Second), PodPending, "", 0, "", t0.Add(60 * time.Second)},
		{"unschedulable past timeout", podAt(func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: "Unschedulable", Message: "0/1 nodes are available: node(s) didn't match selector"}}
		}), t0.Add(61 * time.Second), PodError, ReasonScheduleTimeout, 0, "didn't match selector", time.Time{}},
		{"scheduled, pulling", podAt(all(scheduled(t0.Add(5*time.Second)), baseState(waiting("ContainerCreating")))),
			t0.Add(100 * time.Second), PodPending, "", 0, "", t0.Add(125 * time.Second)},
		{"startup timeout from scheduling", podAt(all(scheduled(t0.Add(5*time.Second)), baseState(waiting("ContainerCreating")))),
			t0.Add(126 * time.Second), PodError, ReasonStartupTimeout, 0, "base: ContainerCreating", time.Time{}},
		{"running is never timed out", podAt(all(scheduled(t0), baseState(running))),
			t0.Add(24 * time.Hour), PodRunning, "", 0, "", time.Time{}},
		{"image pull fails fast", podAt(all(scheduled(t0), baseState(waiting("ErrImagePull")))),
			t0.Add(time.Second), PodError, "ErrImagePull", 0, "container base: ErrImagePull: details", time.Time{}},
		{"backoff fails fast", podAt(all(scheduled(t0), baseState(waiting("ImagePullBackOff")))),
			t0.Add(time.Second), PodError, "ImagePullBackOff", 0, "ImagePullBackOff", time.Time{}},
		{"crash loop fails fast", podAt(all(scheduled(t0), baseState(waiting("CrashLoopBackOff")))),
			t0.Add(time.Second), PodError, "CrashLoopBackOff", 0, "", time.Time{}},
		{"succeeded though sidecar runs", podAt(all(scheduled(t0), baseState(terminated(0, "Completed", "", t0.Add(3*time.Second))),
			func(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning })),
			t0.Add(4 * time.Second), PodSucceeded, "Completed", 0, "", time.Time{}},
		{"failed with message", podAt(all(scheduled(t0), baseState(terminated(3, "Error", "boom\n", t0.Add(3*time.Second))))),
			t0.Add(4 * time.Second), PodFailed, "Error", 3, "boom", time.Time{}},
		{"deleted before it ended", podAt(all(scheduled(t0), baseState(running), func(p *corev1.Pod) {
			ts := metav1.NewTime(t0.Add(40 * time.Second))
			grace := int64(30)
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &grace
		})), t0.Add(11 * time.Second), PodError, ReasonPodDeleted, 0, "pod deleted", time.Time{}},
		{"ended by deletion", podAt(all(scheduled(t0), baseState(terminated(143, "Error", "", t0.Add(12*time.Second))), func(p *corev1.Pod) {
			ts := metav1.NewTime(t0.Add(40 * time.Second))
			grace := int64(30)
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &grace
		})), t0.Add(13 * time.Second), PodError, ReasonPodDeleted, 0, "pod deleted", time.Time{}},
		{"ended, then deleted", podAt(all(scheduled(t0), baseState(terminated(0, "Completed", "", t0.Add(5*time.Second))), func(p *corev1.Pod) {
			ts := metav1.NewTime(t0.Add(40 * time.Second))
			grace := int64(30)
			p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &ts, &grace
		})), t0.Add(13 * time.Second), PodSucceeded, "Completed", 0, "", time.Time{}},
		{"evicted", podAt(all(scheduled(t0), func(p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "low on memory"
		})), t0.Add(time.Second), PodError, "Evicted", 0, "low on memory", time.Time{}},
		{"init container running stops the startup clock", podAt(all(scheduled(t0), func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", State: running}}
		})), t0.Add(time.Hour), PodPending, "", 0, "", time.Time{}},
		{"startup clock restarts after init containers", podAt(all(scheduled(t0), baseState(waiting("PodInitializing")), func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", State: terminated(0, "Completed", "", t0.Add(time.Hour))}}
		})), t0.Add(time.Hour + time.Minute), PodPending, "", 0, "", t0.Add(time.Hour + 2*time.Minute)},
		{"init container failed", podAt(all(scheduled(t0), func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodFailed
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", State: terminated(2, "Error", "", t0)}}
		})), t0.Add(time.Second), PodError, "Error", 2, "init container init exited with code 2", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, ev := EvaluatePod(tt.pod, tt.now, timeouts)
			if ev.Status != tt.wantStatus || ev.Reason != tt.wantReason || done != ev.Done() {
				t.Fatalf("EvaluatePod = %v %+v, want status %s reason %q", done, ev, tt.wantStatus, tt.wantReason)
			}
			if tt.wantCode != 0 && (ev.ExitCode == nil || *ev.ExitCode != tt.wantCode) {
				t.Errorf("exit code = %v, want %d", ev.ExitCode, tt.wantCode)
			}
			if !strings.Contains(ev.Message, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", ev.Message, tt.wantMsg)
			}
			if !ev.RecheckAt.Equal(tt.recheck) {
				t.Errorf("RecheckAt = %v, want %v", ev.RecheckAt, tt.recheck)
			}
			if ev.Namespace != "ns" || ev.Name != "p" {
				t.Errorf("event names pod %s/%s", ev.Namespace, ev.Name)
			}
		})
	}
	if done, ev := EvaluatePod(nil, t0, timeouts); !done || ev.Reason != ReasonPodDeleted {
		t.Errorf("nil pod: %v %+v", done, ev)
	}
}

func TestParseXCom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		ok      bool
		want    string
		wantErr string
	}{
		{"", false, "", ""},
		{"  \n", false, "", ""},
		{"[1,2,3,4]\n", true, "[1 2 3 4]", ""},
		{`{"a": 12345678901234567890}`, true, "map[a:12345678901234567890]", ""},
		{"not json at all", false, "", `invalid JSON in /airflow/xcom/return.json`},
		{"[1,2", false, "", `it starts with "[1,2"`},
		{"1 2", false, "", "more than one JSON value"},
	}
	for _, tt := range tests {
		v, ok, err := ParseXCom([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseXCom(%q) err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || ok != tt.ok {
			t.Errorf("ParseXCom(%q) = %v, %v, %v", tt.in, v, ok, err)
			continue
		}
		if ok && strings.TrimSpace(fmtValue(v)) != tt.want {
			t.Errorf("ParseXCom(%q) = %s, want %s", tt.in, fmtValue(v), tt.want)
		}
	}
}

// TestLogResumeNoDuplicates: a stream resumed from the last timestamp (which
// the API rounds down to the second) repeats lines; none is written twice and
// none is lost.
func TestLogResumeNoDuplicates(t *testing.T) {
	t.Parallel()
	log := flowtest.NewLog()
	f := &logFollower{r: &podRun{tc: nil}, container: "base"}
	f.r.tc = &operators.TaskContext{Log: log}
	first := []string{
		"2026-11-28T09:00:00.100000000Z one",
		"2026-11-28T09:00:00.200000000Z two",
		"2026-11-28T09:00:00.200000000Z two-again-same-ts",
	}
	second := []string{ // resumed with sinceTime 09:00:00
		"2026-11-28T09:00:00.100000000Z one",
		"2026-11-28T09:00:00.200000000Z two",
		"2026-11-28T09:00:00.200000000Z two-again-same-ts",
		"2026-11-28T09:00:00.200000000Z three-same-ts",
		"2026-11-28T09:00:01.000000000Z four",
		"no timestamp",
	}
	from, skip := f.lastTS, f.atLast
	for _, l := range first {
		f.write(l, from, &skip)
	}
	from, skip = f.lastTS, f.atLast
	for _, l := range second {
		f.write(l, from, &skip)
	}
	expect(t, "lines", log.SourceLines("base"), []string{"one", "two", "two-again-same-ts", "three-same-ts", "four", "no timestamp"})
}

// TestLogKeepsLinesOutOfTimeOrder: a container's stdout and stderr are
// stamped apart, so an echo's output can carry an earlier time than the
// shell's trace written before it (seen on the local cluster with `set -x`).
// Within one stream no line is dropped; a resumed stream still skips what
// was written.
func TestLogKeepsLinesOutOfTimeOrder(t *testing.T) {
	t.Parallel()
	log := flowtest.NewLog()
	f := &logFollower{r: &podRun{tc: &operators.TaskContext{Log: log}}, container: "base"}
	first := []string{
		"2026-11-28T09:00:00.300000000Z + echo 'file secret'",
		"2026-11-28T09:00:00.250000000Z file secret",
		"2026-11-28T09:00:00.400000000Z + echo done",
	}
	from, skip := f.lastTS, f.atLast
	for _, l := range first {
		f.write(l, from, &skip)
	}
	from, skip = f.lastTS, f.atLast
	for _, l := range first { // resumed from 09:00:00: repeats them
		f.write(l, from, &skip)
	}
	expect(t, "lines", log.SourceLines("base"), []string{"+ echo 'file secret'", "file secret", "+ echo done"})
}

// stampedLog records the times lines were stamped with.
type stampedLog struct {
	*flowtest.Log
	at []time.Time
}

func (l *stampedLog) LineAt(at time.Time, source, text string) {
	l.at = append(l.at, at)
	l.Line(source, text)
}

// TestPodLogLinesKeepPodTime: a pod's lines are stamped with the time the
// container wrote them (a deferred pod's log is read minutes later).
func TestPodLogLinesKeepPodTime(t *testing.T) {
	t.Parallel()
	log := &stampedLog{Log: flowtest.NewLog()}
	f := &logFollower{r: &podRun{tc: &operators.TaskContext{Log: log}}, container: "base"}
	skip := 0
	f.write("2026-11-28T09:00:00.100000000Z one", time.Time{}, &skip)
	f.write("2026-11-28T09:05:00.5Z two", time.Time{}, &skip)
	want := []time.Time{time.Date(2026, 11, 28, 9, 0, 0, 100_000_000, time.UTC), time.Date(2026, 11, 28, 9, 5, 0, 500_000_000, time.UTC)}
	if len(log.at) != 2 || !log.at[0].Equal(want[0]) || !log.at[1].Equal(want[1]) {
		t.Fatalf("stamps = %v, want %v", log.at, want)
	}
	expect(t, "lines", log.SourceLines("base"), []string{"one", "two"})
}
