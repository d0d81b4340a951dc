package api

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
)

// GetRenderedFields renders a task's templated options in a run, as `podflow
// tasks render`: with the DAG version the run uses, its conf, dates, try and
// XComs. Connections are not given to the templates, so a viewer never
// sees a secret through them; an option that needs one is listed in errors.
func (s *Server) GetRenderedFields(ctx context.Context, req gen.GetRenderedFieldsRequestObject) (gen.GetRenderedFieldsResponseObject, error) {
	ti, err := s.taskInstance(ctx, s.st.Q, req.DagId, req.DagRunId, req.TaskId, nil)
	if err != nil {
		return nil, err
	}
	run, err := s.st.Run(ctx, req.DagId, req.DagRunId)
	if err != nil {
		return nil, err
	}
	d, err := scheduler.VersionDAG(ctx, s.st.Q, s.parser, run.Hash)
	if err != nil {
		return nil, err
	}
	task := d.Task(req.TaskId)
	if task == nil {
		return nil, fmt.Errorf("task %s is not in the DAG version %.12s of run %s: %w", req.TaskId, run.Hash, run.RunID, store.ErrNotFound)
	}
	schema, ok := s.parser.Registry.Lookup(task.Operator)
	if !ok {
		return nil, fmt.Errorf("task %s: unknown operator %q", task.ID, task.Operator)
	}
	conf, err := dag.ParseConf(run.Conf)
	if err != nil {
		conf = map[string]any{} // checked when the run was created
	}
	tc := operators.NewTaskContext(d, task, operators.TaskRun{RunID: run.RunID, TryNumber: max(ti.TryNumber, 1),
		LogicalDate: run.LogicalDate, DataIntervalStart: run.DataIntervalStart, DataIntervalEnd: run.DataIntervalEnd,
		Conf: conf, XCom: s.st.XComPuller(run.DagID, run.RunID)}, discardLog{}, nil)
	out := gen.GetRenderedFields200JSONResponse{Fields: map[string]any{}, Errors: map[string]string{}}
	for _, opt := range schema.Options {
		v, set := task.Options[opt.Name]
		if !opt.Templated || !set {
			continue
		}
		rendered, err := operators.RenderValue(ctx, tc, opt.Name, v)
		if err != nil {
			out.Errors[opt.Name] = s.mask(ctx, err.Error())
			continue
		}
		out.Fields[opt.Name] = s.maskValue(ctx, rendered)
	}
	return out, nil
}

// maskValue masks the secrets in a rendered value (XComs and conf are
// stored as they were pushed, so a value rendered from them may hold one):
// a string directly, anything else through its JSON form, so that nested
// and JSON-escaped secrets are caught too.
func (s *Server) maskValue(ctx context.Context, v any) any {
	if str, ok := v.(string); ok {
		return s.mask(ctx, str)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return s.mask(ctx, fmt.Sprint(v))
	}
	masked := s.mask(ctx, string(raw))
	if masked == string(raw) {
		return v
	}
	var back any
	if err := json.Unmarshal([]byte(masked), &back); err != nil {
		return masked
	}
	return back
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Line(string, string)   {}
