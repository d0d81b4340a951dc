package dag_test

import (
	"reflect"
	"testing"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

// The dag package's own tests cannot import the operators (they import
// dag), so they declare bash and empty by hand; this test keeps that copy
// equal to what the operators declare.
func TestTestRegistryMatchesTheOperators(t *testing.T) {
	for _, real := range []*dag.OperatorSchema{bash.New().Schema(), empty.New().Schema()} {
		copied, ok := dag.TestRegistry().Lookup(real.Name)
		if !ok {
			t.Errorf("the dag tests do not declare operator %s", real.Name)
			continue
		}
		// Check functions are compared by presence only (funcs are never
		// DeepEqual); what they check is the operator's own test's business.
		if !reflect.DeepEqual(comparable(copied.Options), comparable(real.Options)) {
			t.Errorf("the dag tests' %s options drifted from the operator's:\n got %+v\nwant %+v", real.Name, copied.Options, real.Options)
		}
	}
}

func comparable(opts []dag.Option) []dag.Option {
	out := make([]dag.Option, len(opts))
	for i, o := range opts {
		if o.Check != nil {
			o.Name += " (checked)"
		}
		o.Check = nil
		out[i] = o
	}
	return out
}
