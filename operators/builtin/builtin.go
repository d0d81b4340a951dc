// Package builtin assembles the operators podflow ships with into a registry.
package builtin

import (
	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/internal/triggerer"

	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
	"github.com/podflow/podflow/operators/timesensor"
)

// Deps are what the operators need from the process.
type Deps struct {
	Logger hclog.Logger
}

// Registry returns a registry with every built-in operator.
func Registry(d Deps) *operators.Registry {
	return operators.NewRegistry(
		bash.New(),
		empty.New(),
		timesensor.Delta{},
		timesensor.DateTime{},
	)
}

// TriggerKinds returns the trigger kinds a triggerer runs, by name.
func TriggerKinds(d Deps) map[string]triggerer.Kind {
	return map[string]triggerer.Kind{
		timesensor.TriggerKind: timesensor.Trigger{},
	}
}
