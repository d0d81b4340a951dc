// Package operators is the contract between podflow and its operators: a
// schema of options (for validation), an Execute step, and for operators
// that defer (Deferrer) their trigger kinds and a Resume step. Operators
// are registered in a Registry built once per process; nothing is global.
//
//	worker:    Execute ──▶ Result{Deferral{Kind, Args, Deadline, Method}}
//	triggerer: Trigger(Kind).Run(Args) ──▶ Event{Status, Message, Detail}
//	           (deadline passed: Event{Status: timeout}; error: Event{Status: error})
//	worker:    Resume(Method, Event) ──▶ Result or error
//
// A deferrable operator lives in one package with its trigger and its
// event detail; registering the operator registers its triggers.
package operators

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/templating"
)

// Operator runs one kind of task.
type Operator interface {
	// Schema declares the operator's options for validation.
	Schema() *dag.OperatorSchema
	// Execute runs the task. It returns when the task is finished, or with a
	// Result whose Deferral is set when the task hands itself to a trigger.
	Execute(ctx context.Context, tc *TaskContext) (*Result, error)
}

// Quiet is implemented by operators whose successful tries have nothing
// worth logging (empty): the scheduler writes no log rows for such a try
// when it logged nothing but podflow's own start and outcome lines — the
// state history already tells when it ran and how it ended.
type Quiet interface {
	Quiet()
}

// Resumer is implemented by operators that defer: the worker calls Resume
// with the trigger's event when the task comes back from the triggerer.
type Resumer interface {
	// Resume is called with every EventStatus; on EventTimeout (and when ctx
	// has already ended) it stops what Execute started.
	Resume(ctx context.Context, tc *TaskContext, method string, event Event) (*Result, error)
}

// TaskContext is everything an operator gets about the task instance it runs.
type TaskContext struct {
	DAG       *dag.DAG
	Task      *dag.Task
	RunID     string
	TryNumber int
	// Mapped and MapIndex identify a mapped task's instance (MapIndex is
	// -1 when not Mapped, if the context came from NewTaskContext).
	Mapped   bool
	MapIndex int
	// Template is the context for rendering templated options.
	Template *templating.Context
	// Log receives the task's log lines; it is safe for concurrent use.
	Log Log
	// Deadline is when execution_timeout expires (zero: none). ctx carries it
	// too; operators that defer put it on their trigger.
	Deadline time.Time
	// Connections resolves named connections (e.g. kubernetes_conn_id).
	Connections Connections
	// SetExternalID records an operator's handle on the task instance row
	// before it waits (e.g. the pod's namespace/name), so a restarted worker
	// or a kill can find it. May be nil in tests.
	SetExternalID func(ctx context.Context, namespace, name string) error
	// ExternalNamespace and ExternalName are what an earlier try or an earlier
	// owner of this task instance recorded with SetExternalID.
	ExternalNamespace, ExternalName string
}

// Log is a task's log.
type Log interface {
	// Printf writes one line from podflow itself.
	Printf(format string, args ...any)
	// Line writes one line of the task's own output; source names where it
	// came from (e.g. "stdout", or a container name).
	Line(source, text string)
}

// TimedLog is a Log that can keep the time a line was written at its
// source (a pod's own log timestamps), rather than when podflow read it:
// a deferred pod's log is fetched at resume, minutes after it was written.
type TimedLog interface {
	LineAt(at time.Time, source, text string)
}

// LineAt writes a line stamped at, when log keeps times; else as Line.
func LineAt(log Log, at time.Time, source, text string) {
	if tl, ok := log.(TimedLog); ok {
		tl.LineAt(at, source, text)
		return
	}
	log.Line(source, text)
}

// Connections looks up connection settings by id.
type Connections interface {
	Connection(id string) (map[string]any, bool)
}

// ConnectionLookup is a Connections that can say why a connection cannot be
// read (e.g. it cannot be decrypted), rather than calling it absent.
type ConnectionLookup interface {
	LookupConnection(ctx context.Context, id string) (map[string]any, bool, error)
}

// LookupConnection reads a connection through conns, with its error when
// conns can report one.
func LookupConnection(ctx context.Context, conns Connections, id string) (map[string]any, bool, error) {
	if conns == nil {
		return nil, false, nil
	}
	if l, ok := conns.(ConnectionLookup); ok {
		return l.LookupConnection(ctx, id)
	}
	m, ok := conns.Connection(id)
	return m, ok, nil
}

// Result is how a task ended.
type Result struct {
	// XCom values to store with the task's success, by key.
	XCom map[string]any
	// Skipped marks the task skipped instead of successful.
	Skipped bool
	// SkipTasks are tasks of the run to skip with this task's success, in
	// the same transaction (branch, short_circuit); only those still
	// waiting (state none) are skipped.
	SkipTasks []string
	// Deferral, when set, hands the task to the triggerer.
	Deferral *Deferral
}

// Deferral is a task handing itself to a trigger.
type Deferral struct {
	Kind     string          // trigger kind, e.g. "pod", "time"
	Args     json.RawMessage // trigger arguments
	Deadline time.Time       // absolute; zero = none
	Method   string          // the resume step to call with the event
}

// SkipError marks a task skipped from inside an operator (e.g. exit code in
// skip_on_exit_code).
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// IsSkip reports whether err asks for the task to be skipped.
func IsSkip(err error) bool {
	var s *SkipError
	return errors.As(err, &s)
}

// Registry maps operator names to operators, and trigger kinds to the
// triggers the operators declared.
type Registry struct {
	ops      map[string]Operator
	triggers map[string]Trigger
	schemas  *dag.Registry
}

// NewRegistry returns a registry with the given operators.
func NewRegistry(ops ...Operator) *Registry {
	r := &Registry{ops: map[string]Operator{}, triggers: map[string]Trigger{}, schemas: dag.NewRegistry()}
	for _, op := range ops {
		r.Register(op)
	}
	return r
}

// Register adds an operator under its schema's name, and the triggers of a
// Deferrer under their kinds. Two operators declaring one kind with two
// different trigger types is a programming error and panics (as
// http.ServeMux does for a pattern registered twice).
func (r *Registry) Register(op Operator) {
	s := op.Schema()
	r.ops[s.Name] = op
	r.schemas.Register(s)
	d, ok := op.(Deferrer)
	if !ok {
		return
	}
	for _, t := range d.Triggers() {
		if have, ok := r.triggers[t.Kind()]; ok && reflect.TypeOf(have) != reflect.TypeOf(t) {
			panic(fmt.Sprintf("operators: trigger kind %q declared by %T and %T", t.Kind(), have, t))
		}
		r.triggers[t.Kind()] = t
	}
}

// Triggers are the registered operators' trigger kinds, by kind: what a
// triggerer of this process runs.
func (r *Registry) Triggers() map[string]Trigger {
	out := make(map[string]Trigger, len(r.triggers))
	for k, t := range r.triggers {
		out[k] = t
	}
	return out
}

// Lookup returns the operator with the given name.
func (r *Registry) Lookup(name string) (Operator, bool) {
	op, ok := r.ops[name]
	return op, ok
}

// Schemas is the registry the DAG parser validates against.
func (r *Registry) Schemas() *dag.Registry { return r.schemas }
