// Package dag is podflow's DAG model: the YAML file format, its parser with
// file:line:col errors, validation, the task graph and schedules.
//
// A DAG file is parsed into a *DAG whose tasks carry the common task fields
// (retries, trigger rule, pool, …) as typed values and the operator's own
// options as plain Go values (Options) together with their YAML nodes (Nodes),
// so an operator can decode them strictly later and still point at a line.
package dag

import (
	"time"

	"gopkg.in/yaml.v3"
)

// DAG is one parsed and validated DAG file.
type DAG struct {
	ID          string
	Description string
	Schedule    string // cron expression or preset; "" = manual only
	// Assets is `schedule: {assets: …}` (Schedule is then ""); nil: none.
	Assets    *AssetSchedule
	Timezone  *time.Location
	StartDate time.Time // zero when unset
	EndDate   time.Time // zero when unset
	Catchup   bool
	// PausedAtCreation: the DAG starts paused the first time the database
	// sees it (is_paused_upon_creation, else the parser's default, which
	// podflow.yaml's dags_are_paused_at_creation sets).
	PausedAtCreation bool
	MaxActiveRuns    int // default 16
	MaxActiveTasks   int // default 16
	DagrunTimeout    time.Duration
	Tags             []string
	Params           map[string]any
	ConfOverride     ConfOverride // which params a run's conf may override
	Tasks            []*Task      // in file order; Upstream already merged with `dependencies`
	// Callbacks are the run's: on_failure_callback, on_success_callback.
	Callbacks Callbacks
	Deadline  *Deadline // nil: none
	// Groups are the DAG's task groups (task_groups), outer before inner,
	// in file order.
	Groups []*TaskGroup

	Path   string // file the DAG came from
	Hash   string // hex sha256 of Source; identifies the DAG version
	Source []byte // the file's bytes

	idLine, idColumn int // position of the dag_id value, for errors about the whole DAG
}

// Task is one task of a DAG, with default_args applied.
type Task struct {
	ID                      string
	Operator                string
	Upstream                []string
	TriggerRule             TriggerRule
	Retries                 int
	RetryDelay              time.Duration // default 5m, as Airflow
	RetryExponentialBackoff bool
	// CheckTemplates (check_templates, default true) lets validate flag
	// unknown names and undeclared params in the task's templates; a task
	// that builds names dynamically turns it off.
	CheckTemplates bool
	// (The two bools sit together: a scheduler holds every task of every
	// DAG, and the padding after each cost a size class.)
	MaxRetryDelay    time.Duration // 0 = no cap
	ExecutionTimeout time.Duration // 0 = none
	Pool             string        // default "default_pool"
	PriorityWeight   int           // default 1
	Owner            string
	// Map is how the task expands into mapped instances; nil when it is
	// not mapped. MaxActiveTIsPerDag and MaxActiveTIsPerDagrun bound how
	// many of its instances run at once, across runs and in one run (0:
	// no bound).
	Map                                       *Mapping
	MaxActiveTIsPerDag, MaxActiveTIsPerDagrun int
	// Group is the full id of the task group the task is in ("" for none);
	// its ID starts with it ("group.task").
	Group string
	// Callbacks: on_failure_callback, on_retry_callback, … by event.
	Callbacks Callbacks
	// Outlets are the assets the task updates when it succeeds.
	Outlets []Outlet

	// Options are the operator's own options as plain values decoded from
	// YAML (string, int, float64, bool, nil, []any, map[string]any); nil
	// when the task has none.
	Options map[string]any
	// Nodes hold the YAML node of each option, for strict typed decoding
	// with positions; kept after parsing only for operators whose schema
	// asks for them (OperatorSchema.KeepNodes), nil otherwise.
	Nodes map[string]*yaml.Node

	Line, Column int // position of the task's mapping in the file
}

// TriggerRule decides when a task is ready given its upstreams' states.
type TriggerRule string

const (
	AllSuccess              TriggerRule = "all_success"
	AllFailed               TriggerRule = "all_failed"
	AllDone                 TriggerRule = "all_done"
	OneSuccess              TriggerRule = "one_success"
	OneFailed               TriggerRule = "one_failed"
	NoneFailed              TriggerRule = "none_failed"
	NoneFailedMinOneSuccess TriggerRule = "none_failed_min_one_success"
	NoneSkipped             TriggerRule = "none_skipped"
	Always                  TriggerRule = "always"
)

// TriggerRules lists every valid trigger rule.
var TriggerRules = []TriggerRule{AllSuccess, AllFailed, AllDone, OneSuccess, OneFailed,
	NoneFailed, NoneFailedMinOneSuccess, NoneSkipped, Always}

// TaskIDs lists the task ids in file order.
func (d *DAG) TaskIDs() []string {
	ids := make([]string, len(d.Tasks))
	for i, t := range d.Tasks {
		ids[i] = t.ID
	}
	return ids
}

// Task returns the task with the given id, or nil.
func (d *DAG) Task(id string) *Task {
	for _, t := range d.Tasks {
		if t.ID == id {
			return t
		}
	}
	return nil
}
