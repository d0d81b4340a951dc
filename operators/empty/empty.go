// Package empty is the no-op operator: it succeeds at once. Useful for
// structure (join points) and for measuring the scheduler itself.
package empty

import (
	"context"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

// Operator does nothing.
type Operator struct{}

// New returns the empty operator.
func New() *Operator { return &Operator{} }

// Schema declares no options.
func (*Operator) Schema() *dag.OperatorSchema { return &dag.OperatorSchema{Name: "empty"} }

// Quiet: an empty task's log would only say that it started and succeeded.
func (*Operator) Quiet() {}

// Execute succeeds.
func (*Operator) Execute(context.Context, *operators.TaskContext) (*operators.Result, error) {
	return &operators.Result{}, nil
}
