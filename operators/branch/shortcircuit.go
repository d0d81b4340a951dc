package branch

import (
	"context"

	"strings"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

// ShortCircuit is operator short_circuit: `condition:` is a template; when
// it renders falsy the task succeeds and skips every task after it
// (ignore_downstream_trigger_rules: true, the default) or only its direct
// downstream tasks, whose own downstream then follow their trigger rules.
type ShortCircuit struct{}

// Schema declares short_circuit's options.
func (ShortCircuit) Schema() *dag.OperatorSchema {
	return &dag.OperatorSchema{Name: "short_circuit", Options: []dag.Option{
		{Name: "condition", Kind: dag.KindString, Required: true, Templated: true},
		{Name: "ignore_downstream_trigger_rules", Kind: dag.KindBool},
	}}
}

// Execute renders the condition and skips downstream when it is falsy.
func (ShortCircuit) Execute(ctx context.Context, tc *operators.TaskContext) (*operators.Result, error) {
	src, _ := tc.Task.Options["condition"].(string)
	rendered, err := operators.Render(ctx, tc, "condition", src)
	if err != nil {
		return nil, err
	}
	if !Falsy(rendered) {
		tc.Log.Printf("condition %s is true: downstream tasks run", operators.Excerpt(strings.TrimSpace(rendered)))
		return &operators.Result{}, nil
	}
	ignore := true
	if v, ok := tc.Task.Options["ignore_downstream_trigger_rules"].(bool); ok {
		ignore = v
	}
	skip := ShortCircuitSkips(tc.DAG, tc.Task.ID, ignore)
	tc.Log.Printf("condition %s is false: skipping %s", operators.Excerpt(strings.TrimSpace(rendered)), listText(skip))
	return &operators.Result{SkipTasks: skip}, nil
}

// Falsy is Python's truth of what a condition rendered: empty, False, 0,
// None and empty lists or dicts are false ({{ ti.xcom_pull('t') }} of an
// empty list renders "[]").
func Falsy(rendered string) bool {
	switch strings.TrimSpace(rendered) {
	case "", "False", "false", "0", "0.0", "None", "none", "null", "[]", "{}", "()", "''", `""`:
		return true
	}
	return false
}

// ShortCircuitSkips is what a falsy short_circuit skips: every task after
// it, or with ignoreTriggerRules false only its direct downstream tasks.
func ShortCircuitSkips(d *dag.DAG, taskID string, ignoreTriggerRules bool) []string {
	if ignoreTriggerRules {
		return d.DownstreamAll(taskID)
	}
	return d.Downstream(taskID)
}
