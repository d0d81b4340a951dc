package crossdag

import (
	"context"
	"fmt"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/dagwatch"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/operators"
)

// DefaultSensorTimeout is Airflow's sensor timeout: 7 days.
const DefaultSensorTimeout = 7 * 24 * time.Hour

// ExternalTaskSensor is operator external_task_sensor: it waits until a
// task of another DAG (or, without external_task_id, its whole run) with
// the same logical date — or execution_date, or the logical date minus
// execution_delta — reaches allowed_states (default [success]), and fails
// at once on failed_states or after timeout.
type ExternalTaskSensor struct{ Hub *dagwatch.Hub }

// Schema declares the sensor's options.
func (*ExternalTaskSensor) Schema() *dag.OperatorSchema {
	return &dag.OperatorSchema{Name: "external_task_sensor", Options: []dag.Option{
		{Name: "external_dag_id", Kind: dag.KindString, Required: true, Templated: true},
		{Name: "external_task_id", Kind: dag.KindString, Templated: true},
		{Name: "execution_date", Kind: dag.KindString, Templated: true},
		{Name: "execution_delta", Kind: dag.KindDuration},
		{Name: "allowed_states", Kind: dag.KindStringList},
		{Name: "failed_states", Kind: dag.KindStringList},
		{Name: "timeout", Kind: dag.KindDuration},
		{Name: "soft_fail", Kind: dag.KindBool},
		{Name: "deferrable", Kind: dag.KindBool},
	}, Validate: func(t *dag.Task) []*dag.Error {
		errs := checkStates(t, t.Options["external_task_id"] == nil)
		if t.Options["execution_date"] != nil && t.Options["execution_delta"] != nil {
			errs = append(errs, &dag.Error{Line: t.Line, Column: t.Column,
				Msg: fmt.Sprintf("task %s: give execution_date or execution_delta, not both", t.ID)})
		}
		return errs
	}}
}

// Triggers is the dag_state trigger.
func (s *ExternalTaskSensor) Triggers() []operators.Trigger {
	return []operators.Trigger{Trigger{Hub: s.Hub}}
}

// Execute works out the target and defers (or waits in the worker).
func (s *ExternalTaskSensor) Execute(ctx context.Context, tc *operators.TaskContext) (*operators.Result, error) {
	a, err := sensorArgs(ctx, tc)
	if err != nil {
		return nil, err
	}
	timeout := DefaultSensorTimeout
	if d, ok := operators.DurationOption(tc.Task.Options["timeout"]); ok {
		timeout = d
	}
	res, ev, err := wait(ctx, tc, s.Hub, a, time.Now().Add(timeout), "resume")
	if err != nil || res != nil {
		return res, err
	}
	return s.Resume(ctx, tc, "resume", ev)
}

// Resume ends the task with the trigger's event.
func (s *ExternalTaskSensor) Resume(ctx context.Context, tc *operators.TaskContext, method string, ev operators.Event) (*operators.Result, error) {
	soft, _ := tc.Task.Options["soft_fail"].(bool)
	if _, err := resume(tc, ev, soft); err != nil {
		return nil, err
	}
	return &operators.Result{}, nil
}

// sensorArgs renders the sensor's target.
func sensorArgs(ctx context.Context, tc *operators.TaskContext) (Args, error) {
	o := tc.Task.Options
	str := func(key string) (string, error) {
		raw, _ := o[key].(string)
		return operators.Render(ctx, tc, key, raw)
	}
	var a Args
	var err error
	if a.DagID, err = str("external_dag_id"); err != nil {
		return a, err
	}
	if a.TaskID, err = str("external_task_id"); err != nil {
		return a, err
	}
	a.LogicalDate = tc.Template.LogicalDate
	if d, ok := operators.DurationOption(o["execution_delta"]); ok {
		a.LogicalDate = a.LogicalDate.Add(-d)
	}
	if o["execution_date"] != nil {
		s, err := str("execution_date")
		if err != nil {
			return a, err
		}
		if a.LogicalDate, err = operators.ParseTime(s, tc.DAG.Timezone); err != nil {
			return a, fmt.Errorf("task %s: execution_date: %w", tc.Task.ID, err)
		}
	}
	a.Allowed, a.Failed = stringList(o["allowed_states"]), stringList(o["failed_states"])
	if len(a.Allowed) == 0 {
		a.Allowed = []string{runstate.Success}
	}
	return a, nil
}
