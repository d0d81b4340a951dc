// Package timesensor has the deferrable time sensors — time_delta_sensor_async
// (wait until the run's data interval end + delta) and date_time_sensor_async
// (wait until target_time) — and the "time" trigger they defer to
// (trigger.go). They hold no worker slot while they wait.
//
// It is the smallest deferrable operator, and the shape of any other: the
// operators, their trigger and its arguments in one package; registering the
// operators (operators/builtin) registers the trigger.
package timesensor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

// Delta is time_delta_sensor_async.
type Delta struct{}

// Schema declares `delta`.
func (Delta) Schema() *dag.OperatorSchema {
	return &dag.OperatorSchema{Name: "time_delta_sensor_async", Options: []dag.Option{
		{Name: "delta", Kind: dag.KindDuration, Required: true},
	}}
}

// Execute defers until the data interval's end plus delta.
func (Delta) Execute(ctx context.Context, tc *operators.TaskContext) (*operators.Result, error) {
	delta, ok := operators.DurationOption(tc.Task.Options["delta"])
	if !ok {
		return nil, fmt.Errorf("task %s: delta %v is not a duration", tc.Task.ID, tc.Task.Options["delta"])
	}
	return wait(tc, tc.Template.DataIntervalEnd.Add(delta))
}

// Resume finishes the wait.
func (Delta) Resume(ctx context.Context, tc *operators.TaskContext, method string, event operators.Event) (*operators.Result, error) {
	return resume(tc, event)
}

// Triggers is the time trigger.
func (Delta) Triggers() []operators.Trigger { return []operators.Trigger{Trigger{}} }

// DateTime is date_time_sensor_async.
type DateTime struct{}

// Schema declares `target_time` (templated).
func (DateTime) Schema() *dag.OperatorSchema {
	return &dag.OperatorSchema{Name: "date_time_sensor_async", Options: []dag.Option{
		{Name: "target_time", Kind: dag.KindString, Required: true, Templated: true},
	}}
}

// Execute defers until target_time.
func (DateTime) Execute(ctx context.Context, tc *operators.TaskContext) (*operators.Result, error) {
	raw, _ := tc.Task.Options["target_time"].(string)
	s, err := operators.Render(ctx, tc, "target_time", raw)
	if err != nil {
		return nil, err
	}
	at, err := operators.ParseTime(s, tc.DAG.Timezone)
	if err != nil {
		return nil, fmt.Errorf("task %s: target_time %w", tc.Task.ID, err)
	}
	return wait(tc, at)
}

// Resume finishes the wait.
func (DateTime) Resume(ctx context.Context, tc *operators.TaskContext, method string, event operators.Event) (*operators.Result, error) {
	return resume(tc, event)
}

// Triggers is the time trigger.
func (DateTime) Triggers() []operators.Trigger { return []operators.Trigger{Trigger{}} }

func wait(tc *operators.TaskContext, at time.Time) (*operators.Result, error) {
	if !time.Now().Before(at) {
		tc.Log.Printf("target time %s has passed", at.Format(time.RFC3339))
		return &operators.Result{}, nil
	}
	args, err := json.Marshal(Args{Moment: at})
	if err != nil {
		return nil, err
	}
	tc.Log.Printf("waiting until %s on a time trigger", at.Format(time.RFC3339))
	return &operators.Result{Deferral: &operators.Deferral{Kind: TriggerKind, Args: args, Method: "resume"}}, nil
}

// resume ends the wait by the event: only success is the time reached;
// failed, error and timeout (execution_timeout passed first) fail the task.
// Nothing was started, so nothing is stopped.
func resume(tc *operators.TaskContext, ev operators.Event) (*operators.Result, error) {
	switch ev.Status {
	case operators.EventSuccess:
		tc.Log.Printf("target time reached")
		return &operators.Result{}, nil
	case operators.EventFailed, operators.EventError, operators.EventTimeout, operators.EventProgress:
		// A time trigger sends no progress: one would be a bug, not a wait.
		return nil, fmt.Errorf("task %s: time trigger %s: %s", tc.Task.ID, ev.Status, ev.Message)
	}
	return nil, fmt.Errorf("task %s: time trigger: unknown event status %q", tc.Task.ID, ev.Status)
}
