package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/operators"
)

// How long cleanup calls may take after the task's own context ended.
const cleanupTimeout = 30 * time.Second

// How long the API may fail in a row before the task gives up waiting.
const apiFailureLimit = time.Minute

// retryDelay is the pause before re-opening a dropped watch or log stream.
const retryDelay = 500 * time.Millisecond

// podRun is one task try's pod: launching or re-attaching, waiting, logs,
// XCom and cleanup.
type podRun struct {
	tc         *operators.TaskContext
	plan       *plan
	client     kubernetes.Interface
	restConfig *rest.Config
	now        func() time.Time
	ns, name   string

	mu             sync.Mutex
	latest         *corev1.Pod
	logs           map[string]*logFollower
	logCursors     LogCursors // where a deferred task's progress resumes stopped
	logsWG         sync.WaitGroup
	sidecarStopped bool

	// onDone, when set, is called as soon as the final event is known
	// (benchmarks measure the time from there to the task's end).
	onDone func(PodEvent)
}

func (o *Operator) newRun(tc *operators.TaskContext, p *plan) (*podRun, error) {
	cl, err := o.clients.Get(p.cluster.Cluster(p.conn))
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &podRun{tc: tc, plan: p, client: cl.Kubernetes, restConfig: cl.Config, now: o.now,
		ns: p.pod.Namespace, name: p.pod.Name, logs: map[string]*logFollower{}, onDone: o.onDone}, nil
}

func (r *podRun) pods() podsClient { return r.client.CoreV1().Pods(r.ns) }

type podsClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error)
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Create(ctx context.Context, pod *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Pod, error)
}

// launch re-attaches to the try's pod if one exists, else creates it, and
// records it on the task instance before anything waits.
func (r *podRun) launch(ctx context.Context) error {
	var pod *corev1.Pod
	if r.plan.opts.ReattachOnRestart {
		found, err := r.find(ctx)
		if err != nil {
			return err
		}
		if found != nil {
			pod = found
			r.tc.Log.Printf("re-attaching to pod %s/%s (phase %s)", found.Namespace, found.Name, found.Status.Phase)
		}
	}
	if pod == nil {
		created, err := r.pods().Create(ctx, r.plan.pod, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create pod %s/%s: a pod with this name already exists (from an earlier run?); delete it or set random_name_suffix: true", r.ns, r.name)
		}
		if err != nil {
			return fmt.Errorf("create pod %s/%s: %w", r.ns, r.name, err)
		}
		pod = created
		r.tc.Log.Printf("created pod %s/%s", pod.Namespace, pod.Name)
	}
	r.ns, r.name = pod.Namespace, pod.Name
	r.setLatest(pod)
	if r.tc.SetExternalID != nil {
		if err := r.tc.SetExternalID(ctx, r.ns, r.name); err != nil {
			r.delete(nil)
			return fmt.Errorf("record pod %s/%s on the task instance: %w", r.ns, r.name, err)
		}
	}
	return nil
}

// find looks for this task instance's unfinished pod: the one recorded on
// the task instance, else by labels. Extra pods (never made by this version) are deleted so exactly
// one remains.
func (r *podRun) find(ctx context.Context) (*corev1.Pod, error) {
	// Not the try number, as Airflow's find_pod: a try that follows one whose
	// worker died re-attaches to that try's pod instead of starting a second
	// one. Pods an earlier try finished with are deleted or marked
	// already_checked, so they are never picked up again.
	identity := map[string]string{}
	for _, k := range []string{LabelDagID, LabelTaskID, LabelRunID, LabelPodOperator} {
		identity[k] = r.plan.pod.Labels[k]
	}
	if v, mapped := r.plan.pod.Labels[LabelMapIndex]; mapped {
		// A mapped instance's pod, not its siblings' (which share every
		// other label), as Airflow's find_pod selects by map_index too.
		identity[LabelMapIndex] = v
	}
	if r.tc.ExternalName != "" && r.tc.ExternalNamespace == r.ns {
		pod, err := r.pods().Get(ctx, r.tc.ExternalName, metav1.GetOptions{})
		if err == nil && ownedBy(pod, identity) {
			return pod, nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get pod %s/%s: %w", r.ns, r.tc.ExternalName, err)
		}
	}
	list, err := r.pods().List(ctx, metav1.ListOptions{LabelSelector: FindSelector(identity)})
	if err != nil {
		return nil, fmt.Errorf("find pod of this task in %s: %w", r.ns, err)
	}
	var pods []*corev1.Pod
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp == nil {
			pods = append(pods, &list.Items[i])
		}
	}
	if len(pods) == 0 {
		return nil, nil
	}
	sort.Slice(pods, func(i, j int) bool {
		return pods[j].CreationTimestamp.Before(&pods[i].CreationTimestamp)
	})
	for _, extra := range pods[1:] {
		r.tc.Log.Printf("deleting extra pod %s/%s of the same task try", extra.Namespace, extra.Name)
		if err := r.pods().Delete(ctx, extra.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("delete extra pod %s/%s: %w", extra.Namespace, extra.Name, err)
		}
	}
	return pods[0], nil
}

func ownedBy(pod *corev1.Pod, identity map[string]string) bool {
	if pod.DeletionTimestamp != nil || pod.Labels[LabelAlreadyCheck] == "True" {
		return false
	}
	for k, v := range identity {
		if pod.Labels[k] != v {
			return false
		}
	}
	return true
}

func (r *podRun) setLatest(pod *corev1.Pod) {
	r.mu.Lock()
	r.latest = pod
	r.mu.Unlock()
}

func (r *podRun) current() *corev1.Pod {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest
}

func (r *podRun) timeouts() Timeouts {
	o := r.plan.opts
	t := Timeouts{Startup: time.Duration(o.StartupTimeout) * time.Second}
	if o.ScheduleTimeout != nil {
		t.Schedule = time.Duration(*o.ScheduleTimeout) * time.Second
	}
	return t
}

// runToEnd waits for the base container while streaming logs, then finishes.
func (r *podRun) runToEnd(ctx context.Context) (*operators.Result, error) {
	ev, err := r.wait(ctx)
	if err != nil {
		r.stopLogs(0)
		if ctx.Err() != nil {
			return nil, r.kill(context.Cause(ctx), ctx.Err())
		}
		r.cleanup(PodEvent{Status: PodError})
		return nil, err
	}
	return r.finish(ctx, ev)
}

// wait follows the pod with a watch until EvaluatePod says it is done,
// starting log streams as containers start.
func (r *podRun) wait(ctx context.Context) (PodEvent, error) {
	timeouts := r.timeouts()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	evaluate := func(pod *corev1.Pod) (bool, PodEvent) {
		r.setLatest(pod)
		r.observe(ctx, pod)
		done, ev := EvaluatePod(pod, r.now(), timeouts)
		timer.Stop()
		if !ev.RecheckAt.IsZero() {
			timer.Reset(ev.RecheckAt.Sub(r.now()) + 10*time.Millisecond)
		}
		return done, ev
	}
	pod := r.current()
	if done, ev := evaluate(pod); done {
		return ev, nil
	}
	rv := pod.ResourceVersion
	var failingSince time.Time
	apiFailed := func(err error) error {
		if failingSince.IsZero() {
			failingSince = r.now()
			r.tc.Log.Printf("watching pod %s/%s: %v (retrying)", r.ns, r.name, err)
		}
		if r.now().Sub(failingSince) > apiFailureLimit {
			return fmt.Errorf("watch pod %s/%s: %w", r.ns, r.name, err)
		}
		return sleep(ctx, retryDelay)
	}
	for {
		if rv == "" {
			pod, err := r.pods().Get(ctx, r.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return DeletedEvent(r.ns, r.name), nil
			}
			if err != nil {
				if ferr := apiFailed(err); ferr != nil {
					return PodEvent{}, ferr
				}
				continue
			}
			if done, ev := evaluate(pod); done {
				return ev, nil
			}
			rv = pod.ResourceVersion
		}
		w, err := r.pods().Watch(ctx, metav1.ListOptions{
			FieldSelector:       fields.OneTermEqualSelector("metadata.name", r.name).String(),
			ResourceVersion:     rv,
			AllowWatchBookmarks: true,
		})
		if err != nil {
			if apierrors.IsGone(err) || apierrors.IsResourceExpired(err) {
				rv = ""
				continue
			}
			if ferr := apiFailed(err); ferr != nil {
				return PodEvent{}, ferr
			}
			continue
		}
		failingSince = time.Time{}
		ev, done, err := r.watchEvents(ctx, w, timer, evaluate, &rv)
		w.Stop()
		if err != nil || done {
			return ev, err
		}
	}
}

// watchEvents consumes one watch until it ends (done false: re-watch from rv).
func (r *podRun) watchEvents(ctx context.Context, w watch.Interface, timer *time.Timer,
	evaluate func(*corev1.Pod) (bool, PodEvent), rv *string) (PodEvent, bool, error) {
	for {
		select {
		case <-ctx.Done():
			return PodEvent{}, false, ctx.Err()
		case <-timer.C:
			if done, ev := evaluate(r.current()); done {
				return ev, true, nil
			}
		case e, ok := <-w.ResultChan():
			if !ok {
				return PodEvent{}, false, nil
			}
			switch e.Type {
			case watch.Added, watch.Modified:
				pod, ok := e.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				*rv = pod.ResourceVersion
				if done, ev := evaluate(pod); done {
					return ev, true, nil
				}
			case watch.Deleted:
				return DeletedEvent(r.ns, r.name), true, nil
			case watch.Bookmark:
				if m, err := metaAccessor(e.Object); err == nil {
					*rv = m
				}
			case watch.Error:
				*rv = "" // expired or broken: start again from a fresh read
				return PodEvent{}, false, nil
			}
		}
	}
}

func metaAccessor(obj any) (string, error) {
	if m, ok := obj.(metav1.Object); ok {
		return m.GetResourceVersion(), nil
	}
	return "", errors.New("no metadata")
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// finish turns a final event into the task's result: XCom (read, then the
// sidecar always stopped), logs drained, on_finish_action applied.
func (r *podRun) finish(ctx context.Context, ev PodEvent) (*operators.Result, error) {
	ev.Namespace, ev.Name = r.ns, r.name
	if r.onDone != nil {
		r.onDone(ev)
	}
	baseEnded := ev.Status == PodSucceeded || ev.Status == PodFailed
	var (
		value    any
		hasValue bool
		xcomErr  error
	)
	if baseEnded && r.hasSidecar() {
		if ev.Status == PodSucceeded && r.plan.opts.DoXComPush {
			value, hasValue, xcomErr = r.readXCom(ctx)
		} else {
			r.stopSidecar(ctx)
		}
	}
	r.stopLogs(10 * time.Second)
	if ev.ExitCode != nil && baseEnded {
		r.tc.Log.Printf("base container exited with code %d", *ev.ExitCode)
	}

	res, err := r.result(ctx, ev, value, hasValue, xcomErr)
	if ctx.Err() != nil {
		return nil, r.kill(context.Cause(ctx), ctx.Err())
	}
	r.cleanup(ev)
	return res, err
}

// result is the task's outcome for a final event.
func (r *podRun) result(ctx context.Context, ev PodEvent, value any, hasValue bool, xcomErr error) (*operators.Result, error) {
	where := fmt.Sprintf("pod %s/%s", r.ns, r.name)
	switch ev.Status {
	case PodSucceeded:
		if xcomErr != nil {
			return nil, fmt.Errorf("%s: %w", where, xcomErr)
		}
		res := &operators.Result{XCom: map[string]any{"pod_name": r.name, "pod_namespace": r.ns}}
		if hasValue {
			res.XCom["return_value"] = value
		}
		return res, nil
	case PodFailed:
		code := *ev.ExitCode
		if r.plan.opts.SkipOnExitCode.Has(code) {
			r.tc.Log.Printf("exit code %d is in skip_on_exit_code: skipping", code)
			return nil, &operators.SkipError{Reason: fmt.Sprintf("%s: base container exited with code %d (skip_on_exit_code)", where, code)}
		}
		msg := fmt.Sprintf("%s: base container failed with exit code %d", where, code)
		if ev.Reason != "" {
			msg += " (reason " + ev.Reason + ")"
		}
		if ev.Message != "" {
			msg += ", termination message: " + ev.Message
		}
		return nil, errors.New(msg + r.failureDetails(ctx))
	case PodError:
		if ev.Reason == ReasonPodDeleted {
			return nil, fmt.Errorf("%s: pod deleted", where)
		}
		return nil, errors.New(where + ": " + ev.Message + r.failureDetails(ctx))
	}
	return nil, fmt.Errorf("%s: unexpected pod state %s", where, ev.Status)
}

// failureDetails logs the pod's container states and, with
// log_events_on_failure, its events; the events are also returned for the
// error message.
func (r *podRun) failureDetails(ctx context.Context) string {
	if pod := r.current(); pod != nil {
		for _, line := range containerStates(pod) {
			r.tc.Log.Printf("%s", line)
		}
	}
	if !r.plan.opts.LogEventsOnFailure {
		return ""
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	events, err := r.client.CoreV1().Events(r.ns).List(cctx, metav1.ListOptions{
		FieldSelector: fields.Set{"involvedObject.name": r.name, "involvedObject.namespace": r.ns}.String(),
	})
	if err != nil {
		r.tc.Log.Printf("read events of pod %s/%s: %v", r.ns, r.name, err)
		return ""
	}
	lines := formatEvents(events.Items)
	for _, line := range lines {
		r.tc.Log.Printf("event: %s", line)
	}
	if len(lines) == 0 {
		return ""
	}
	return "\npod events:\n  " + strings.Join(lines, "\n  ")
}

func formatEvents(events []corev1.Event) []string {
	sort.SliceStable(events, func(i, j int) bool {
		return kube.EventTime(events[i]).Before(kube.EventTime(events[j]))
	})
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s %s %s: %s", kube.EventTime(e).UTC().Format(time.RFC3339), e.Type, e.Reason, strings.TrimSpace(e.Message)))
	}
	return out
}

// containerStates describes each container's state, for failure logs.
func containerStates(pod *corev1.Pod) []string {
	var out []string
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			switch {
			case s.State.Terminated != nil:
				t := s.State.Terminated
				out = append(out, fmt.Sprintf("container %s: terminated, exit code %d, reason %s%s", s.Name, t.ExitCode, t.Reason, suffixed(t.Message)))
			case s.State.Running != nil:
				out = append(out, fmt.Sprintf("container %s: running since %s", s.Name, s.State.Running.StartedAt.UTC().Format(time.RFC3339)))
			case s.State.Waiting != nil:
				out = append(out, fmt.Sprintf("container %s: waiting, %s%s", s.Name, s.State.Waiting.Reason, suffixed(s.State.Waiting.Message)))
			}
		}
	}
	return out
}

// cleanup applies on_finish_action after the task ended normally.
func (r *podRun) cleanup(ev PodEvent) {
	if ev.Reason == ReasonPodDeleted {
		return
	}
	baseEnded := ev.Status == PodSucceeded || ev.Status == PodFailed
	action := r.plan.opts.finishAction()
	del := action == DeletePod ||
		(action == DeleteSucceededPod && ev.Status == PodSucceeded) ||
		(action == DeleteActivePod && !baseEnded)
	if del {
		r.delete(nil)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if r.hasSidecar() {
		r.stopSidecar(ctx)
	}
	patch := []byte(`{"metadata":{"labels":{"` + LabelAlreadyCheck + `":"True"}}}`)
	if _, err := r.pods().Patch(ctx, r.name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		r.tc.Log.Printf("mark kept pod %s/%s: %v", r.ns, r.name, err)
		return
	}
	r.tc.Log.Printf("kept pod %s/%s (on_finish_action %s)", r.ns, r.name, action)
}

// kill ends a try whose task was stopped (execution_timeout, a trigger's
// deadline, SIGTERM, a kill): the pod is deleted with
// termination_grace_period whatever on_finish_action says. It returns err
// about the pod.
func (r *podRun) kill(reason, err error) error {
	r.tc.Log.Printf("task stopped (%v): deleting pod %s/%s", reason, r.ns, r.name)
	r.delete(r.plan.opts.TerminationGracePeriod)
	return fmt.Errorf("pod %s/%s: %w", r.ns, r.name, err)
}

// delete deletes the pod with a fresh context, so it also works after the
// task's context ended (execution_timeout, SIGTERM).
func (r *podRun) delete(gracePeriod *int64) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	err := r.pods().Delete(ctx, r.name, metav1.DeleteOptions{GracePeriodSeconds: gracePeriod})
	switch {
	case err == nil:
		r.tc.Log.Printf("deleted pod %s/%s", r.ns, r.name)
	case apierrors.IsNotFound(err):
	default:
		r.tc.Log.Printf("delete pod %s/%s: %v", r.ns, r.name, err)
	}
}

func (r *podRun) hasSidecar() bool {
	pod := r.current()
	if pod == nil {
		pod = r.plan.pod
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == SidecarContainerName {
			return true
		}
	}
	return false
}

// resume finishes a deferred task: the pod's current state, then its logs
// once (from where a stream would resume), then finish.
func (r *podRun) resume(ctx context.Context, ev PodEvent) (*operators.Result, error) {
	pod, err := r.pods().Get(ctx, r.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return r.finish(ctx, DeletedEvent(r.ns, r.name))
	case err != nil:
		return nil, fmt.Errorf("get pod %s/%s: %w", r.ns, r.name, err)
	}
	r.setLatest(pod)
	r.observe(ctx, pod)
	return r.finish(ctx, ev)
}

// progress is the periodic resume of logging_interval: it copies the logs
// the running pod wrote since the last one and defers again. The pod is
// looked up once; if it ended meanwhile, the task is finished now.
func (o *Operator) progress(ctx context.Context, r *podRun, ev operators.Event) (*operators.Result, error) {
	pe, err := progressOf(ev)
	if err != nil {
		r.ns, r.name = r.tc.ExternalNamespace, r.tc.ExternalName
		why := fmt.Errorf("bad trigger event: %w", err)
		return nil, r.kill(why, why)
	}
	r.ns, r.name, r.logCursors = pe.Namespace, pe.Name, pe.LogCursors
	if ctx.Err() != nil {
		return nil, r.kill(context.Cause(ctx), ctx.Err())
	}
	pod, err := r.pods().Get(ctx, r.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return r.finish(ctx, DeletedEvent(r.ns, r.name))
	case err != nil:
		return nil, fmt.Errorf("get pod %s/%s: %w", r.ns, r.name, err)
	}
	r.setLatest(pod)
	if done, final := EvaluatePod(pod, r.now(), r.timeouts()); done {
		return r.resume(ctx, final)
	}
	return o.deferTask(r, r.copyLogsSoFar(ctx, pod, pe.LogCursors))
}
