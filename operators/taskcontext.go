package operators

import (
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/templating"
)

// TaskRun is the run and try a task context is built for.
type TaskRun struct {
	RunID     string // dag.RunID of the run
	TryNumber int
	// LogicalDate and the data interval of the run; a zero interval end
	// means a manual run, whose interval is its logical date.
	LogicalDate                        time.Time
	DataIntervalStart, DataIntervalEnd time.Time
	Conf                               map[string]any        // dag_run.conf; nil means {}
	XCom                               templating.XComPuller // nil: xcom_pull fails clearly
	// Mapped and MapIndex identify a mapped task's instance.
	Mapped   bool
	MapIndex int
	// TriggeringAssetEvents: asset URI → events that triggered the run.
	TriggeringAssetEvents map[string]any
}

// NewTaskContext is the one way a task context is built — by the worker,
// `podflow test` and `podflow dry-run` alike — so that params (the DAG's
// defaults overridden by conf), the run id and the template context agree
// everywhere. The caller sets what only it knows (Deadline, SetExternalID,
// ExternalNamespace/Name).
func NewTaskContext(d *dag.DAG, t *dag.Task, run TaskRun, log Log, conns Connections) *TaskContext {
	conf := run.Conf
	if conf == nil {
		conf = map[string]any{}
	}
	start, end := run.DataIntervalStart, run.DataIntervalEnd
	if end.IsZero() {
		start, end = run.LogicalDate, run.LogicalDate
	}
	// Connections that also answer templates ({{ var.… }}, {{ conn.… }}):
	// internal/secrets' resolver, in the worker and the CLI.
	secrets, _ := conns.(templating.SecretLookup)
	mapIndex := -1
	if run.Mapped {
		mapIndex = run.MapIndex
	}
	return &TaskContext{
		DAG:       d,
		Task:      t,
		RunID:     run.RunID,
		TryNumber: run.TryNumber,
		Mapped:    run.Mapped,
		MapIndex:  mapIndex,
		Log:       log,
		Template: &templating.Context{
			DagID: d.ID, TaskID: t.ID, RunID: run.RunID, TryNumber: run.TryNumber,
			LogicalDate: run.LogicalDate, DataIntervalStart: start, DataIntervalEnd: end,
			Params: d.RunParams(conf), Conf: conf, XCom: run.XCom, Secrets: secrets,
			Mapped: run.Mapped, MapIndex: run.MapIndex, TaskOptions: t.Options,
			TriggeringAssetEvents: run.TriggeringAssetEvents,
		},
		Connections: conns,
	}
}
