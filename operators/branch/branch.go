// Package branch holds the operators that choose which downstream tasks
// run: branch (Airflow's BranchPythonOperator, with a template in place of
// the callable) and short_circuit (ShortCircuitOperator). Both succeed and
// hand the tasks to skip to the store with their success, in one
// transaction (operators.Result.SkipTasks); the trigger rules of the tasks
// after those do the rest, as in Airflow.
//
//	branch ──▶ chosen ──▶ … ──┐
//	   └─────▶ other (skipped) ┴─▶ join (none_failed_min_one_success runs)
package branch

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

// Branch is operator branch: `branch:` renders a task id or a list of
// them, among the task's direct downstream tasks; the other direct
// downstream tasks are skipped.
type Branch struct{}

// Schema declares branch's options.
func (Branch) Schema() *dag.OperatorSchema {
	return &dag.OperatorSchema{Name: "branch", Options: []dag.Option{
		{Name: "branch", Kind: dag.KindString, Required: true, Templated: true},
	}}
}

// Execute renders the choice and skips the paths not chosen.
func (Branch) Execute(ctx context.Context, tc *operators.TaskContext) (*operators.Result, error) {
	src, _ := tc.Task.Options["branch"].(string)
	rendered, err := operators.Render(ctx, tc, "branch", src)
	if err != nil {
		return nil, err
	}
	chosen, err := ChosenIDs(rendered)
	if err != nil {
		return nil, fmt.Errorf("task %s: branch: %w", tc.Task.ID, err)
	}
	skip, err := BranchSkips(tc.DAG, tc.Task, chosen)
	if err != nil {
		return nil, err
	}
	tc.Log.Printf("branch chose %s; skipping %s", listText(chosen), listText(skip))
	return &operators.Result{SkipTasks: skip, XCom: map[string]any{"return_value": anyList(chosen)}}, nil
}

// ChosenIDs reads a rendered branch: one task id, a list of them (JSON or
// Python), or nothing ("", None, []) to skip every direct downstream task.
func ChosenIDs(rendered string) ([]string, error) {
	s := strings.TrimSpace(rendered)
	switch s {
	case "", "None", "null", "[]":
		return nil, nil
	}
	if !strings.ContainsAny(s[:1], "[('\"") {
		return []string{s}, nil // a bare task id
	}
	v, err := operators.ParseLiteral(s)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s as a task id or a list of task ids: %w", operators.Excerpt(s), err)
	}
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		ids := make([]string, 0, len(x))
		for _, e := range x {
			id, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("wants task ids, got %v in %s", e, operators.Excerpt(s))
			}
			ids = append(ids, id)
		}
		return ids, nil
	}
	return nil, fmt.Errorf("wants a task id or a list of task ids, got %s", operators.Excerpt(s))
}

// BranchSkips is what a branch's choice skips: its direct downstream tasks
// that are neither chosen nor downstream of a chosen one (Airflow's
// skip_all_except, so a join directly after the branch is not skipped when
// a chosen path leads to it). An id that is not a direct downstream task
// of the branch is an error naming it; inside a task group, ids may be
// given relative to the branch's group.
func BranchSkips(d *dag.DAG, t *dag.Task, chosen []string) ([]string, error) {
	direct := d.Downstream(t.ID)
	keep := map[string]bool{}
	for i, id := range chosen {
		if !slices.Contains(direct, id) && t.Group != "" && slices.Contains(direct, t.Group+"."+id) {
			id = t.Group + "." + id
			chosen[i] = id
		}
		if !slices.Contains(direct, id) {
			return nil, fmt.Errorf("task %s: branch chose %q, which is not a direct downstream task of %s (those are: %s)",
				t.ID, id, t.ID, listText(direct))
		}
		keep[id] = true
		for _, after := range d.DownstreamAll(id) {
			keep[after] = true
		}
	}
	var skip []string
	for _, id := range direct {
		if !keep[id] {
			skip = append(skip, id)
		}
	}
	return skip, nil
}

func listText(ids []string) string {
	if len(ids) == 0 {
		return "nothing"
	}
	return strings.Join(ids, ", ")
}

func anyList(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}
