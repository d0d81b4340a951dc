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
	// Extra holds names beyond the task context, for templates rendered
	// elsewhere (an alert's message: state, exception, link, …); the task
	// context's own names win.
	Extra map[string]any
	// Secrets answers {{ var.… }} and {{ conn.… }}; nil: they fail clearly.
	Secrets SecretLookup
	// Mapped and MapIndex: {{ ti.map_index }} is MapIndex for a mapped
	// instance, -1 otherwise (as Airflow).
	Mapped   bool
	MapIndex int
	// TaskOptions are the task's options, as {{ task.<option> }} reads them
	// (a mapped instance's expanded values included); nil: none.
	TaskOptions map[string]any
	// TriggeringAssetEvents are {{ triggering_asset_events }}: asset URI →
	// list of events (plain values); nil: an empty mapping.
	TriggeringAssetEvents map[string]any
}

// MapIndexPuller is an XComPuller that reads one mapped instance's value,
// for xcom_pull(..., map_indexes=N).
type MapIndexPuller interface {
	PullMapIndex(ctx context.Context, taskID, key string, mapIndex int) (value any, found bool, err error)
}

// SecretLookup reads variables and connections for templates
// (internal/secrets resolves them and masks what they reveal).
type SecretLookup interface {
	// TemplateVariable returns a variable's value; found is false if none.
	TemplateVariable(ctx context.Context, key string) (value string, found bool, err error)
	// TemplateConnection returns a connection's fields: conn_id, conn_type,
	// host, schema, login, password, port (int64 or nil), extra (JSON text)
	// and extra_dejson (a map); found is false if none.
	TemplateConnection(ctx context.Context, id string) (fields map[string]any, found bool, err error)
}

// XComPuller reads XCom values of the current DAG run.
type XComPuller interface {
	// Pull returns the value stored by task taskID under key in the current
	// run; found is false if there is none.
	Pull(ctx context.Context, taskID, key string) (value any, found bool, err error)
}
