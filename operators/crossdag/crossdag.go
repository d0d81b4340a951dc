// Package crossdag holds the operators that depend on other DAGs:
// external_task_sensor (Airflow's ExternalTaskSensor, deferrable by
// default) and trigger_dag_run (TriggerDagRunOperator). Both wait through
// one trigger kind, "dag_state", which waits on the process's shared
// dagwatch.Hub: the database wakes it (a NOTIFY on every final state), so
// a thousand waiting tasks cost one LISTEN connection and one batched query
// per change, never a poll each.
//
//	external_task_sensor: Execute ──defer──▶ dag_state(target, allowed, failed) ──▶ Resume: success | fail
//	trigger_dag_run:      Execute: create run ──(wait_for_completion)──▶ dag_state(run) ──▶ Resume: the run's state
package crossdag

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/dagwatch"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/operators"
)

// TriggerKind is the kind of the trigger both operators defer to.
const TriggerKind = "dag_state"

// Args are a dag_state trigger's arguments.
type Args struct {
	DagID       string    `json:"dag_id"`
	RunID       string    `json:"run_id,omitempty"`
	LogicalDate time.Time `json:"logical_date"`
	TaskID      string    `json:"task_id,omitempty"`
	Allowed     []string  `json:"allowed_states"`
	Failed      []string  `json:"failed_states"`
}

func (a Args) target() dagwatch.Target {
	return dagwatch.Target{DagID: a.DagID, RunID: a.RunID, LogicalDate: a.LogicalDate, TaskID: a.TaskID}
}

// Detail is a dag_state event's detail: the state the target reached.
type Detail struct {
	State string `json:"state"`
	RunID string `json:"run_id,omitempty"`
}

// Trigger waits on the hub until the target reaches an allowed state
// (EventSuccess) or a failed one (EventFailed).
type Trigger struct{ Hub *dagwatch.Hub }

var (
	_ operators.Trigger  = Trigger{}
	_ operators.Deferrer = (*ExternalTaskSensor)(nil)
	_ operators.Deferrer = (*TriggerDagRun)(nil)
)

// Kind is "dag_state".
func (Trigger) Kind() string { return TriggerKind }

// Run waits for the target.
func (t Trigger) Run(ctx context.Context, raw json.RawMessage) (operators.Event, error) {
	var a Args
	if err := json.Unmarshal(raw, &a); err != nil {
		return operators.Event{}, fmt.Errorf("dag_state trigger args %q: %w", raw, err)
	}
	return waitEvent(ctx, t.Hub, a)
}

// waitEvent waits for a target and says how its wait ended.
func waitEvent(ctx context.Context, hub *dagwatch.Hub, a Args) (operators.Event, error) {
	if hub == nil {
		return operators.ErrorEvent("this process has no database watch for other DAGs' states"), nil
	}
	state, err := hub.Wait(ctx, a.target(), func(s string) bool { return judge(a, s) != "" })
	if err != nil {
		return operators.Event{}, err
	}
	detail, _ := json.Marshal(Detail{State: state, RunID: a.RunID})
	ev := operators.Event{Status: judge(a, state), Detail: detail,
		Message: fmt.Sprintf("%s is %s", a.target(), state)}
	return ev, nil
}

// judge is how a target's state ends a wait: success when allowed, failed
// when failed, "" (wait on) otherwise.
func judge(a Args, state string) operators.EventStatus {
	switch {
	case state == "":
		return ""
	case slices.Contains(a.Allowed, state):
		return operators.EventSuccess
	case slices.Contains(a.Failed, state):
		return operators.EventFailed
	}
	return ""
}

// finalTaskStates and finalRunStates are the states a wait may name: the
// database notifies waiters when a task instance or a run reaches one.
var (
	finalTaskStates = []string{runstate.Success, runstate.Failed, runstate.Skipped, runstate.UpstreamFailed}
	finalRunStates  = []string{runstate.RunSuccess, runstate.RunFailed}
)

// checkStates validates allowed_states and failed_states at parse time.
func checkStates(t *dag.Task, forRun bool) []*dag.Error {
	valid := finalTaskStates
	what := "a task's"
	if forRun {
		valid, what = finalRunStates, "a run's"
	}
	var errs []*dag.Error
	seen := map[string]string{}
	for _, key := range []string{"allowed_states", "failed_states"} {
		for _, s := range stringList(t.Options[key]) {
			if !slices.Contains(valid, s) {
				n := t.Nodes[key]
				line, col := t.Line, t.Column
				if n != nil {
					line, col = n.Line, n.Column
				}
				errs = append(errs, &dag.Error{Line: line, Column: col,
					Msg: fmt.Sprintf("task %s: %s: %q is not %s final state (%s)", t.ID, key, s, what, strings.Join(valid, ", "))})
			}
			if other, ok := seen[s]; ok && other != key {
				errs = append(errs, &dag.Error{Line: t.Line, Column: t.Column,
					Msg: fmt.Sprintf("task %s: state %q is in both allowed_states and failed_states", t.ID, s)})
			}
			seen[s] = key
		}
	}
	return errs
}

// resume ends a task with its dag_state event.
func resume(tc *operators.TaskContext, ev operators.Event, softFail bool) (Detail, error) {
	var d Detail
	if len(ev.Detail) > 0 {
		_ = json.Unmarshal(ev.Detail, &d)
	}
	switch ev.Status {
	case operators.EventSuccess:
		tc.Log.Printf("%s", ev.Message)
		return d, nil
	case operators.EventFailed:
		return d, fmt.Errorf("task %s: %s, one of failed_states", tc.Task.ID, ev.Message)
	case operators.EventTimeout:
		if softFail {
			return d, &operators.SkipError{Reason: "timed out waiting (soft_fail): " + ev.Message}
		}
		return d, fmt.Errorf("task %s: timed out waiting: %s", tc.Task.ID, ev.Message)
	case operators.EventError, operators.EventProgress:
		return d, fmt.Errorf("task %s: dag_state trigger %s: %s", tc.Task.ID, ev.Status, ev.Message)
	}
	return d, fmt.Errorf("task %s: dag_state trigger: unknown event status %q", tc.Task.ID, ev.Status)
}

// wait defers to the trigger, or with deferrable: false waits in the
// worker on the same hub.
func wait(ctx context.Context, tc *operators.TaskContext, hub *dagwatch.Hub, a Args, deadline time.Time, method string) (*operators.Result, operators.Event, error) {
	if deferrable(tc) {
		raw, err := json.Marshal(a)
		if err != nil {
			return nil, operators.Event{}, err
		}
		tc.Log.Printf("deferring: waiting for %s to reach %v (fails on %v)", a.target(), a.Allowed, a.Failed)
		return &operators.Result{Deferral: &operators.Deferral{Kind: TriggerKind, Args: raw, Deadline: deadline, Method: method}}, operators.Event{}, nil
	}
	tc.Log.Printf("waiting in the worker for %s to reach %v (fails on %v)", a.target(), a.Allowed, a.Failed)
	wctx, cancel := ctx, context.CancelFunc(func() {})
	if !deadline.IsZero() {
		wctx, cancel = context.WithDeadline(ctx, deadline)
	}
	defer cancel()
	ev, err := waitEvent(wctx, hub, a)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return nil, operators.Event{Status: operators.EventTimeout, Message: fmt.Sprintf("%s did not reach %v by %s", a.target(), a.Allowed, deadline.Format(time.RFC3339))}, nil
	}
	return nil, ev, err
}

func deferrable(tc *operators.TaskContext) bool {
	b, ok := tc.Task.Options["deferrable"].(bool)
	return !ok || b
}

func stringList(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	case string:
		return []string{x}
	}
	return nil
}
