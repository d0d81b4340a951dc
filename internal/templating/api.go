// Package templating renders Jinja templates (Airflow's dialect) in a sandbox.
//
// CONTRACT (implemented by the templating engineer; callers rely on exactly this):
//
//	t, err := templating.Compile(src)          // parse once; err is *SyntaxError with position
//	out, err := t.Render(ctx, &templating.Context{...})  // err names the expression (*RenderError)
//	templating.IsTemplate(s)                   // true if s contains "{{" or "{%" or "{#"
package templating

import (
	"context"
	"time"
)

// Context is what a template can see when a task runs.
type Context struct {
	DagID       string
	TaskID      string
	RunID       string
	TryNumber   int
	LogicalDate time.Time
	// Data interval of the run; for manual runs both equal LogicalDate.
	DataIntervalStart time.Time
	DataIntervalEnd   time.Time
	Params            map[string]any // DAG params with defaults, overridden by conf
	Conf              map[string]any // dag_run.conf
	XCom              XComPuller     // may be nil: xcom_pull then fails clearly
	// Mapped and MapIndex: {{ ti.map_index }} is MapIndex for a mapped
	// instance, -1 otherwise (as Airflow).
	Mapped   bool
	MapIndex int
	// TaskOptions are the task's options, as {{ task.<option> }} reads them
	// (a mapped instance's expanded values included); nil: none.
	TaskOptions map[string]any
}

// MapIndexPuller is an XComPuller that reads one mapped instance's value,
// for xcom_pull(..., map_indexes=N).
type MapIndexPuller interface {
	PullMapIndex(ctx context.Context, taskID, key string, mapIndex int) (value any, found bool, err error)
}

// XComPuller reads XCom values of the current DAG run.
type XComPuller interface {
	// Pull returns the value stored by task taskID under key in the current
	// run; found is false if there is none.
	Pull(ctx context.Context, taskID, key string) (value any, found bool, err error)
}
