// Package builtin assembles the operators and trigger kinds podflow ships
// with.
package builtin

import (
	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/podtrigger"
	"github.com/podflow/podflow/internal/triggerer"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
	"github.com/podflow/podflow/operators/kubernetes"
	"github.com/podflow/podflow/operators/timesensor"
)

// Deps are what the operators need from the process. Zero values work.
type Deps struct {
	Logger hclog.Logger
	// Clients is the process's Kubernetes client cache, shared by the pod
	// operator and the pod trigger (one client per cluster).
	Clients *kube.Clients
	// Connections resolve kubernetes_conn_id for the pod trigger.
	Connections operators.Connections
	// FileRoots confine the files DAGs name (pod_template_file,
	// config_file): the DAGs folder and allowed_paths. None: not confined.
	FileRoots []string
}

func (d Deps) clients() *kube.Clients {
	if d.Clients == nil {
		return kube.NewClients()
	}
	return d.Clients
}

// Registry returns a registry with every built-in operator.
func Registry(d Deps) *operators.Registry {
	return operators.NewRegistry(
		bash.New(),
		empty.New(),
		kubernetes.New(kubernetes.WithClients(d.clients()), kubernetes.WithFileRoots(d.FileRoots...)),
		timesensor.Delta{},
		timesensor.DateTime{},
	)
}

// TriggerKinds returns the trigger kinds a triggerer runs, by name.
func TriggerKinds(d Deps) map[string]triggerer.Kind {
	return map[string]triggerer.Kind{
		timesensor.TriggerKind: timesensor.Trigger{},
		kubernetes.TriggerKind: podtrigger.New(d.clients(), d.Connections, d.Logger),
	}
}
