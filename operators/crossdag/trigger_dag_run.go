package crossdag

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/dagwatch"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
)

// TriggerDagRun is operator trigger_dag_run: it creates a run of
// trigger_dag_id (its current version) with a templated conf, logical_date
// and trigger_run_id, clears an existing run of that id with
// reset_dag_run, and with wait_for_completion waits (deferred by default)
// until the run reaches allowed_states (default [success]) or failed_states
// (default [failed]): the task ends with the child's outcome. It pushes the
// run id as XCom trigger_run_id.
type TriggerDagRun struct {
	Hub   *dagwatch.Hub
	Store *store.Store
	// Parser reads the triggered DAG's stored version.
	Parser *dag.Parser
}

// Schema declares the operator's options.
func (*TriggerDagRun) Schema() *dag.OperatorSchema {
	return &dag.OperatorSchema{Name: "trigger_dag_run", Options: []dag.Option{
		{Name: "trigger_dag_id", Kind: dag.KindString, Required: true, Templated: true},
		{Name: "trigger_run_id", Kind: dag.KindString, Templated: true},
		{Name: "conf", Kind: dag.KindMap, Templated: true},
		{Name: "logical_date", Kind: dag.KindString, Templated: true},
		{Name: "reset_dag_run", Kind: dag.KindBool},
		{Name: "wait_for_completion", Kind: dag.KindBool},
		{Name: "allowed_states", Kind: dag.KindStringList},
		{Name: "failed_states", Kind: dag.KindStringList},
		{Name: "deferrable", Kind: dag.KindBool},
	}, Validate: func(t *dag.Task) []*dag.Error { return checkStates(t, true) }}
}

// Triggers is the dag_state trigger.
func (o *TriggerDagRun) Triggers() []operators.Trigger {
	return []operators.Trigger{Trigger{Hub: o.Hub}}
}

// Execute creates (or resets) the run, then returns or waits for it.
func (o *TriggerDagRun) Execute(ctx context.Context, tc *operators.TaskContext) (*operators.Result, error) {
	if o.Store == nil || o.Parser == nil {
		return nil, fmt.Errorf("task %s: trigger_dag_run needs the database; it runs in a scheduler's worker", tc.Task.ID)
	}
	opts := tc.Task.Options
	str := func(key string) (string, error) {
		raw, _ := opts[key].(string)
		return operators.Render(ctx, tc, key, raw)
	}
	dagID, err := str("trigger_dag_id")
	if err != nil {
		return nil, err
	}
	logical := time.Now().UTC()
	if opts["logical_date"] != nil {
		s, err := str("logical_date")
		if err != nil {
			return nil, err
		}
		if logical, err = operators.ParseTime(s, tc.DAG.Timezone); err != nil {
			return nil, fmt.Errorf("task %s: logical_date: %w", tc.Task.ID, err)
		}
	}
	runID, err := str("trigger_run_id")
	if err != nil {
		return nil, err
	}
	var conf []byte
	if opts["conf"] != nil {
		v, err := operators.RenderValue(ctx, tc, "conf", opts["conf"])
		if err != nil {
			return nil, err
		}
		if conf, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("task %s: conf: %w", tc.Task.ID, err)
		}
	}
	d, err := scheduler.CurrentDAG(ctx, o.Store.Q, o.Parser, dagID)
	if err != nil {
		return nil, fmt.Errorf("task %s: trigger_dag_id %s: %w", tc.Task.ID, dagID, err)
	}
	if runID, err = o.createOrReset(ctx, tc, d, runID, logical, conf); err != nil {
		return nil, err
	}
	xcom := map[string]any{"trigger_run_id": runID}
	if wait, _ := opts["wait_for_completion"].(bool); !wait {
		return &operators.Result{XCom: xcom}, nil
	}
	a := Args{DagID: dagID, RunID: runID, Allowed: stringList(opts["allowed_states"]), Failed: stringList(opts["failed_states"])}
	if len(a.Allowed) == 0 {
		a.Allowed = []string{runstate.RunSuccess}
	}
	if len(a.Failed) == 0 {
		a.Failed = []string{runstate.RunFailed}
	}
	res, ev, err := wait(ctx, tc, o.Hub, a, time.Time{}, "resume")
	if err != nil || res != nil {
		return res, err
	}
	return o.Resume(ctx, tc, "resume", ev)
}

// createOrReset creates the run, or clears the existing run of that id
// when reset_dag_run is set.
func (o *TriggerDagRun) createOrReset(ctx context.Context, tc *operators.TaskContext, d *dag.DAG, runID string, logical time.Time, conf []byte) (string, error) {
	var created bool
	err := o.Store.InTx(ctx, func(q store.Q) error {
		var err error
		runID, created, err = scheduler.CreateRunWithID(ctx, q, d, "manual", runID, logical, conf)
		return err
	})
	var confErr *scheduler.ConfError
	switch {
	case errors.As(err, &confErr):
		return "", fmt.Errorf("task %s: conf: %w", tc.Task.ID, err)
	case err != nil:
		return "", fmt.Errorf("task %s: trigger %s: %w", tc.Task.ID, d.ID, err)
	case created:
		tc.Log.Printf("triggered %s run %s (logical date %s)", d.ID, runID, logical.Format(time.RFC3339))
		return runID, nil
	}
	if reset, _ := tc.Task.Options["reset_dag_run"].(bool); !reset {
		return "", fmt.Errorf("task %s: a run %s of %s already exists (reset_dag_run: true clears it instead)", tc.Task.ID, runID, d.ID)
	}
	run, err := o.Store.Run(ctx, d.ID, runID)
	if err != nil {
		return "", fmt.Errorf("task %s: reset run %s of %s: %w", tc.Task.ID, runID, d.ID, err)
	}
	if _, err := scheduler.ClearRun(ctx, o.Store, o.Parser, run, scheduler.ClearRequest{}); err != nil {
		return "", fmt.Errorf("task %s: reset run %s of %s: %w", tc.Task.ID, runID, d.ID, err)
	}
	tc.Log.Printf("cleared the existing run %s of %s (reset_dag_run)", runID, d.ID)
	return runID, nil
}

// Resume ends the task with the triggered run's outcome.
func (o *TriggerDagRun) Resume(ctx context.Context, tc *operators.TaskContext, method string, ev operators.Event) (*operators.Result, error) {
	d, err := resume(tc, ev, false)
	if err != nil {
		return nil, err
	}
	return &operators.Result{XCom: map[string]any{"trigger_run_id": d.RunID}}, nil
}
