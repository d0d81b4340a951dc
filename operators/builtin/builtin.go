// Package builtin assembles the operators podflow ships with. Operators that
// defer bring their trigger kinds with them (operators.Deferrer): the
// registry built here is also what a triggerer runs (Registry.Triggers).
package builtin

import (
	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/dagwatch"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/branch"
	"github.com/podflow/podflow/operators/crossdag"
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
	// Hub is the process's watch on other DAGs' states (external_task_sensor,
	// trigger_dag_run); Store lets trigger_dag_run create runs. Nil: those
	// operators fail clearly when they run.
	Hub   *dagwatch.Hub
	Store *store.Store
}

// Registry returns a registry with every built-in operator and their
// trigger kinds.
func Registry(d Deps) *operators.Registry {
	clients := d.Clients
	if clients == nil {
		clients = kube.NewClients()
	}
	triggerDagRun := &crossdag.TriggerDagRun{Hub: d.Hub, Store: d.Store}
	r := operators.NewRegistry(
		bash.New(),
		empty.New(),
		branch.Branch{},
		branch.ShortCircuit{},
		kubernetes.New(kubernetes.WithClients(clients), kubernetes.WithConnections(d.Connections), kubernetes.WithLogger(d.Logger),
			kubernetes.WithFileRoots(d.FileRoots...)),
		timesensor.Delta{},
		timesensor.DateTime{},
		&crossdag.ExternalTaskSensor{Hub: d.Hub},
		triggerDagRun,
	)
	triggerDagRun.Parser = dag.NewParser(r.Schemas())
	return r
}
