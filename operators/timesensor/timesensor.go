// Package timesensor has the deferrable time sensors — time_delta_sensor_async
// (wait until the run's data interval end + delta) and date_time_sensor_async
// (wait until target_time) — and the "time" trigger they defer to. They hold
// no worker slot while they wait.
package timesensor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

// TriggerKind is the trigger kind of a time wait.
const TriggerKind = "time"

// Args are a time trigger's arguments.
type Args struct {
	Moment time.Time `json:"moment"`
}

// Event is a trigger event.
type Event struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

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
	delta, ok := durationOption(tc.Task.Options["delta"])
	if !ok {
		return nil, fmt.Errorf("task %s: delta %v is not a duration", tc.Task.ID, tc.Task.Options["delta"])
	}
	return wait(tc, tc.Template.DataIntervalEnd.Add(delta))
}

// Resume finishes the wait.
func (Delta) Resume(ctx context.Context, tc *operators.TaskContext, method string, event json.RawMessage) (*operators.Result, error) {
	return resume(tc, event)
}

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
	at, err := parseTime(s, tc.DAG.Timezone)
	if err != nil {
		return nil, fmt.Errorf("task %s: target_time %q: %w", tc.Task.ID, s, err)
	}
	return wait(tc, at)
}

// Resume finishes the wait.
func (DateTime) Resume(ctx context.Context, tc *operators.TaskContext, method string, event json.RawMessage) (*operators.Result, error) {
	return resume(tc, event)
}

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

func resume(tc *operators.TaskContext, raw json.RawMessage) (*operators.Result, error) {
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("task %s: bad trigger event %q: %w", tc.Task.ID, raw, err)
	}
	if ev.Status != "success" {
		return nil, fmt.Errorf("task %s: time trigger %s: %s", tc.Task.ID, ev.Status, ev.Message)
	}
	tc.Log.Printf("target time reached")
	return &operators.Result{}, nil
}

// Trigger is the "time" trigger kind: it fires at the moment.
type Trigger struct{}

// Run waits until the moment.
func (Trigger) Run(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
	var a Args
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("time trigger args %q: %w", raw, err)
	}
	t := time.NewTimer(time.Until(a.Moment))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return json.Marshal(Event{Status: "success"})
	}
}

func durationOption(v any) (time.Duration, bool) {
	switch x := v.(type) {
	case int:
		return time.Duration(x) * time.Second, true
	case float64:
		return time.Duration(x * float64(time.Second)), true
	case string:
		return dag.ParseDuration(x)
	case time.Duration:
		return x, true
	}
	return 0, false
}

func parseTime(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04:05-07:00", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want RFC3339 or YYYY-MM-DD[ HH:MM:SS]")
}
