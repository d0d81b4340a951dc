package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/mapping"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/xcomstore"
)

// Executor executes tries. Its fields are set once per process.
type Executor struct {
	Operators   *operators.Registry
	Connections operators.Connections
	// LoadDAG returns the DAG version a run was created with, by hash.
	LoadDAG func(ctx context.Context, hash string) (*dag.DAG, error)
	// Now is the clock retries are timed from; nil means time.Now.
	Now func() time.Time
}

// Try is one claimed try of a task instance.
type Try struct {
	DagID, TaskID, Hash string
	// Run is the run and try; its Conf is decoded from RawConf.
	Run      operators.TaskRun
	RawConf  []byte
	MaxTries int        // retries allowed: try n may be retried while n <= MaxTries
	Started  *time.Time // when the try started, kept across a deferral (nil: now)
	// MappedArgs are a mapped instance's expanded options (Run.Mapped).
	MappedArgs []byte
	// NextMethod and NextEvent are set when the try resumes after a deferral.
	NextMethod string
	NextEvent  []byte
	// AssetEvents are the run's triggering asset events (JSON list), if any.
	AssetEvents []byte
	// What an earlier try or owner recorded with SetExternalID, and how to
	// record it (see operators.TaskContext).
	ExternalNamespace, ExternalName string
	SetExternalID                   func(ctx context.Context, namespace, name string) error
	Log                             operators.Log
}

// Execute runs one try and returns its outcome. It never panics out: an
// operator's panic fails the try.
func (e *Executor) Execute(ctx context.Context, try Try) (out Outcome) {
	r := Returned{TryNumber: try.Run.TryNumber, MaxTries: try.MaxTries}
	defer func() {
		if p := recover(); p != nil {
			r.Task, r.Result, r.Cause = nil, nil, nil
			r.Err = fmt.Errorf("operator panicked: %v", p)
			r.Now = e.now()
			out = Decide(r)
		}
	}()
	progress := try.NextMethod != "" && resumeEvent(try.NextEvent).Status == operators.EventProgress
	switch {
	case progress:
	case try.NextMethod != "":
		try.Log.Printf("resuming %s.%s (try %d) after deferral: %s", try.DagID, try.TaskID, try.Run.TryNumber, string(try.NextEvent))
	default:
		instance := ""
		if try.Run.Mapped {
			instance = fmt.Sprintf(" [map_index %d]", try.Run.MapIndex)
		}
		try.Log.Printf("starting %s.%s%s run %s (try %d of %d, DAG version %.12s)", try.DagID, try.TaskID, instance, try.Run.RunID, try.Run.TryNumber, try.MaxTries+1, try.Hash)
	}
	r.Result, r.Err = e.run(ctx, try, &r)
	r.Now = e.now()
	out = Decide(r)
	out.Progress = progress && out.State == runstate.Deferred
	out.Quiet = r.Quiet && out.State == runstate.Success
	return out
}

// run does the try's I/O: it fills r's task, deadline and cause and returns
// what the operator returned.
func (e *Executor) run(ctx context.Context, try Try, r *Returned) (*operators.Result, error) {
	d, err := e.LoadDAG(ctx, try.Hash)
	if err != nil {
		return nil, err
	}
	task := d.Task(try.TaskID)
	if task == nil {
		return nil, fmt.Errorf("task %s is not in DAG %s version %s", try.TaskID, try.DagID, shortHash(try.Hash))
	}
	if try.Run.Mapped && task.Mapped() {
		if task, err = mapping.Instance(task, try.MappedArgs); err != nil {
			return nil, err
		}
	}
	r.Task = task
	op, ok := e.Operators.Lookup(task.Operator)
	if !ok {
		return nil, fmt.Errorf("unknown operator %q", task.Operator)
	}
	_, r.Quiet = op.(operators.Quiet)
	tc, err := e.taskContext(d, task, try)
	if err != nil {
		return nil, err
	}
	if task.ExecutionTimeout > 0 {
		started := e.now()
		if try.Started != nil {
			started = *try.Started // across a deferral, the timeout counts from the try's start
		}
		tc.Deadline = started.Add(task.ExecutionTimeout)
		r.Deadline = tc.Deadline
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadlineCause(ctx, tc.Deadline,
			fmt.Errorf("execution_timeout %s exceeded", task.ExecutionTimeout))
		defer cancel()
	}
	var res *operators.Result
	if try.NextMethod != "" {
		rs, ok := op.(operators.Resumer)
		if !ok {
			return nil, fmt.Errorf("operator %s cannot resume after a deferral", task.Operator)
		}
		res, err = rs.Resume(ctx, tc, try.NextMethod, resumeEvent(try.NextEvent))
	} else {
		res, err = op.Execute(ctx, tc)
	}
	if err != nil {
		r.Cause = context.Cause(ctx)
		return res, err
	}
	if succeeded(res) && len(task.Outlets) > 0 {
		if r.AssetEvents, err = outletEvents(ctx, tc, task.Outlets); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func succeeded(res *operators.Result) bool {
	return res == nil || (res.Deferral == nil && !res.Skipped)
}

// outletEvents are a successful task's asset events, their extra rendered
// with the task's context; a bad template fails the task.
func outletEvents(ctx context.Context, tc *operators.TaskContext, outlets []dag.Outlet) ([]store.NewAssetEvent, error) {
	out := make([]store.NewAssetEvent, 0, len(outlets))
	for _, o := range outlets {
		e := store.NewAssetEvent{URI: o.URI}
		if len(o.Extra) > 0 {
			v, err := operators.RenderValue(ctx, tc, "outlets.extra", o.Extra)
			if err != nil {
				return nil, fmt.Errorf("outlet %s: %w", o.URI, err)
			}
			if e.Extra, err = json.Marshal(v); err != nil {
				return nil, fmt.Errorf("outlet %s: extra: %w", o.URI, err)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// taskContext is the try's task context: operators.NewTaskContext with the
// run's conf decoded and what only a worker knows.
func (e *Executor) taskContext(d *dag.DAG, t *dag.Task, try Try) (*operators.TaskContext, error) {
	run := try.Run
	run.Conf = map[string]any{}
	if len(try.RawConf) > 0 {
		v, err := xcomstore.Decode(try.RawConf)
		if err != nil {
			return nil, fmt.Errorf("run conf: %w", err)
		}
		if m, ok := v.(map[string]any); ok {
			run.Conf = m
		}
	}
	if len(try.AssetEvents) > 0 {
		byURI, err := assetEventsByURI(try.AssetEvents)
		if err != nil {
			return nil, err
		}
		run.TriggeringAssetEvents = byURI
	}
	tc := operators.NewTaskContext(d, t, run, try.Log, e.Connections)
	tc.ExternalNamespace, tc.ExternalName = try.ExternalNamespace, try.ExternalName
	tc.SetExternalID = try.SetExternalID
	return tc, nil
}

func (e *Executor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// assetEventsByURI groups a run's triggering asset events by URI, as
// {{ triggering_asset_events }} shows them.
func assetEventsByURI(raw []byte) (map[string]any, error) {
	var evs []map[string]any
	if err := json.Unmarshal(raw, &evs); err != nil {
		return nil, fmt.Errorf("triggering asset events: %w", err)
	}
	out := map[string]any{}
	for _, e := range evs {
		uri, _ := e["uri"].(string)
		list, _ := out[uri].([]any)
		out[uri] = append(list, e)
	}
	return out, nil
}
