package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/operators"
)

// TriggerKind is the trigger kind of deferred pod tasks.
const TriggerKind = "pod"

// ResumeMethod is the resume step deferred pod tasks come back to.
const ResumeMethod = "resume"

// TriggerArgs are the arguments of a "pod" trigger: which pod to watch on
// which cluster, and its timeouts.
type TriggerArgs struct {
	Cluster                ClusterRef `json:"cluster"`
	Namespace              string     `json:"namespace"`
	Name                   string     `json:"name"`
	StartupTimeoutSeconds  int64      `json:"startup_timeout_seconds"`
	ScheduleTimeoutSeconds int64      `json:"schedule_timeout_seconds"`
	// LoggingIntervalSeconds > 0: while the pod runs, the trigger fires a
	// progress event this often, so that the task resumes on a worker,
	// copies the logs written since, and defers again (Airflow's
	// logging_interval). The trigger itself never reads logs: it keeps one
	// watch per namespace and nothing else per pod.
	LoggingIntervalSeconds int64 `json:"logging_interval_seconds,omitempty"`
	// LogCursors are where the last progress resume stopped.
	LogCursors LogCursors `json:"log_cursors,omitempty"`
}

// Timeouts are the trigger's timeouts for EvaluatePod.
func (a TriggerArgs) Timeouts() Timeouts {
	return Timeouts{Schedule: time.Duration(a.ScheduleTimeoutSeconds) * time.Second,
		Startup: time.Duration(a.StartupTimeoutSeconds) * time.Second}
}

// podTrigger is the triggerer's "pod" kind: it waits for a deferred task's
// pod to finish. All triggers of one (cluster, namespace) share one watch
// (kube.PodWatches, label-selected to podflow's pods); a trigger never polls
// the API server.
//
// Each wait is decided by EvaluatePod from the pod's own timestamps and
// conditions at evaluation time, so a pod that is running is never timed out
// for startup however late a triggerer looks at it, and a pod that finished
// while no triggerer ran resumes as soon as one claims it.
type podTrigger struct {
	clients *kube.Clients
	conns   operators.Connections
	watches *kube.PodWatches
	log     hclog.Logger
	now     func() time.Time
}

var (
	_ operators.Trigger          = (*podTrigger)(nil)
	_ operators.TriggerCanceller = (*podTrigger)(nil)
)

func newPodTrigger(clients *kube.Clients, conns operators.Connections, log hclog.Logger) *podTrigger {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &podTrigger{clients: clients, conns: conns, log: log, now: time.Now,
		watches: kube.NewPodWatches(LabelPodOperator + "=True")}
}

// Kind is "pod".
func (t *podTrigger) Kind() string { return TriggerKind }

func (t *podTrigger) resolve(raw json.RawMessage) (TriggerArgs, *kube.Client, kube.Cluster, error) {
	var args TriggerArgs
	if err := json.Unmarshal(raw, &args); err != nil {
		return args, nil, kube.Cluster{}, fmt.Errorf("pod trigger args: %w", err)
	}
	var conn Connection
	if id := args.Cluster.ConnID; id != "" && t.conns != nil {
		if m, ok := t.conns.Connection(id); ok {
			c, err := ParseConnection(m)
			if err != nil {
				return args, nil, kube.Cluster{}, fmt.Errorf("connection %q: %w", id, err)
			}
			conn = c
		}
	}
	cl := args.Cluster.Cluster(conn)
	client, err := t.clients.Get(cl)
	return args, client, cl, err
}

// Run waits until the pod's wait is over; the event's detail is the
// PodEvent.
func (t *podTrigger) Run(ctx context.Context, raw json.RawMessage) (operators.Event, error) {
	args, client, cl, err := t.resolve(raw)
	if err != nil {
		return operators.Event{}, err
	}
	sub := t.watches.Subscribe(client, cl, args.Namespace, args.Name)
	defer sub.Close()
	if err := sub.WaitSynced(ctx); err != nil {
		return operators.Event{}, err
	}
	var progress <-chan time.Time
	if args.LoggingIntervalSeconds > 0 {
		tick := time.NewTicker(time.Duration(args.LoggingIntervalSeconds) * time.Second)
		defer tick.Stop()
		progress = tick.C
	}
	logsDue := false
	for {
		pod, err := sub.Pod()
		if err != nil {
			return operators.Event{}, err
		}
		if pod == nil {
			// The shared watch may not have seen a pod created a moment ago:
			// ask the API server once before calling it deleted.
			got, err := client.Kubernetes.CoreV1().Pods(args.Namespace).Get(ctx, args.Name, metav1.GetOptions{})
			switch {
			case err == nil:
				pod = got
			case !apierrors.IsNotFound(err):
				if ctx.Err() != nil {
					return operators.Event{}, ctx.Err()
				}
				return operators.Event{}, fmt.Errorf("read pod %s/%s: %w", args.Namespace, args.Name, err)
			}
		}
		done, ev := EvaluatePod(pod, t.now(), args.Timeouts())
		if done {
			if pod == nil {
				ev = DeletedEvent(args.Namespace, args.Name)
			}
			ev.LogCursors = args.LogCursors
			return podTriggerEvent(ev)
		}
		if logsDue && ev.Status == PodRunning {
			return progressEvent(args)
		}
		var recheck <-chan time.Time
		if !ev.RecheckAt.IsZero() {
			timer := time.NewTimer(time.Until(ev.RecheckAt) + 10*time.Millisecond)
			defer timer.Stop()
			recheck = timer.C
		}
		select {
		case <-ctx.Done():
			return operators.Event{}, ctx.Err()
		case <-sub.Changed():
		case <-recheck:
		case <-progress:
			// Only a running pod has new logs; a pending one waits for the
			// next tick after it started.
			logsDue = true
		}
	}
}

// progressEvent asks for the task to be resumed to copy the running pod's
// logs so far (logging_interval).
func progressEvent(args TriggerArgs) (operators.Event, error) {
	detail, err := json.Marshal(PodEvent{Status: PodRunning, Namespace: args.Namespace, Name: args.Name, LogCursors: args.LogCursors})
	if err != nil {
		return operators.Event{}, fmt.Errorf("pod progress event: %w", err)
	}
	return operators.Event{Status: operators.EventProgress, Message: "pod is running: copy its logs so far", Detail: detail}, nil
}

// Cancel deletes the pod of a trigger whose task was killed while deferred.
func (t *podTrigger) Cancel(ctx context.Context, raw json.RawMessage) error {
	args, client, _, err := t.resolve(raw)
	if err != nil {
		return err
	}
	err = client.Kubernetes.CoreV1().Pods(args.Namespace).Delete(ctx, args.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s/%s of a killed task: %w", args.Namespace, args.Name, err)
	}
	t.log.Info("deleted the pod of a killed deferred task", "namespace", args.Namespace, "pod", args.Name)
	return nil
}

// podTriggerEvent wraps a final PodEvent as the trigger's event.
func podTriggerEvent(pe PodEvent) (operators.Event, error) {
	detail, err := json.Marshal(pe)
	if err != nil {
		return operators.Event{}, fmt.Errorf("pod event: %w", err)
	}
	ev := operators.Event{Message: pe.Message, Detail: detail}
	switch pe.Status {
	case PodSucceeded:
		ev.Status = operators.EventSuccess
	case PodFailed:
		ev.Status = operators.EventFailed
	default:
		ev.Status = operators.EventError
	}
	return ev, nil
}

// progressOf is the running pod a progress event names, with its log
// cursors.
func progressOf(ev operators.Event) (PodEvent, error) {
	var pe PodEvent
	if err := json.Unmarshal(ev.Detail, &pe); err != nil {
		return PodEvent{}, fmt.Errorf("read pod progress event %s: %w", ev.Detail, err)
	}
	if pe.Status != PodRunning || pe.Namespace == "" || pe.Name == "" {
		return PodEvent{}, fmt.Errorf("pod progress event %s does not name a running pod", ev.Detail)
	}
	return pe, nil
}

// podEventOf is the PodEvent a trigger event carries. Events the triggerer
// wrote itself (an error before the pod was judged) carry none: they become
// a PodError with the event's message.
func podEventOf(ev operators.Event) (PodEvent, error) {
	if len(ev.Detail) == 0 {
		if ev.Status != operators.EventError {
			return PodEvent{}, fmt.Errorf("%s event without the pod's state", ev.Status)
		}
		return PodEvent{Status: PodError, Message: ev.Message}, nil
	}
	var pe PodEvent
	if err := json.Unmarshal(ev.Detail, &pe); err != nil {
		return PodEvent{}, fmt.Errorf("read pod event %s: %w", ev.Detail, err)
	}
	if !pe.Done() {
		return PodEvent{}, fmt.Errorf("pod event %s is not final", ev.Detail)
	}
	return pe, nil
}
