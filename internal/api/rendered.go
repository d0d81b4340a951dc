package api

import (
	"context"
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
			out.Errors[opt.Name] = err.Error()
			continue
		}
		out.Fields[opt.Name] = rendered
	}
	return out, nil
}

type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Line(string, string)   {}
