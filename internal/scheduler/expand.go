package scheduler

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/mapping"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/xcomstore"
)

// Mapped tasks: when runstate.Decide says a mapped task is ready, its
// placeholder (map_index -1) is expanded into instances in the transaction
// that decided it, under the run's lock: the lists are rendered (they may
// come from an upstream's XCom), then store.ExpandTask writes every
// instance at once, or the placeholder is skipped (empty list) or failed
// (no list, too long). A mapped task whose instances exist already (it was
// cleared) has them queued again as they are.

// queueMapped queues the ready mapped task t of run: expands it, or
// re-queues its cleared instances. ended reports that the task ended
// without running (skipped or failed), so the run needs deciding again.
func (s *Scheduler) queueMapped(ctx context.Context, q store.Q, run store.Run, d *dag.DAG, t *dag.Task) (queued int, ended bool, err error) {
	waiting, err := q.HasPlaceholder(ctx, run.PK, t.ID)
	if err != nil {
		return 0, false, err
	}
	if !waiting {
		ids, err := q.QueueReady(ctx, run.PK, []string{t.ID})
		return len(ids), false, err
	}
	insts, err := Expand(ctx, q, run, d, t, s.cfg.MaxMapLength)
	switch {
	case err != nil:
		s.log.Warn("mapped task failed to expand", "dag_id", run.DagID, "run_id", run.RunID, "task_id", t.ID, "error", err)
		_, ferr := q.FailUnexpanded(ctx, run.PK, t.ID, err.Error())
		return 0, true, ferr
	case len(insts) == 0:
		_, err := q.MarkSkipped(ctx, run.PK, []string{t.ID})
		return 0, true, err
	}
	ok, err := q.ExpandTask(ctx, run.PK, t.ID, insts)
	if !ok || err != nil {
		return 0, false, err
	}
	return len(insts), false, nil
}

// Expand renders mapped task t's lists for run and returns its instances,
// in map_index order, with their map_index_template names. A template or
// length problem is an error that fails the task.
func Expand(ctx context.Context, q store.Q, run store.Run, d *dag.DAG, t *dag.Task, maxLen int) ([]store.NewInstance, error) {
	conf := map[string]any{}
	if len(run.Conf) > 0 {
		if v, err := xcomstore.Decode(run.Conf); err == nil {
			if m, ok := v.(map[string]any); ok {
				conf = m
			}
		}
	}
	taskRun := operators.TaskRun{RunID: run.RunID, LogicalDate: run.LogicalDate, DataIntervalStart: run.DataIntervalStart,
		DataIntervalEnd: run.DataIntervalEnd, Conf: conf, XCom: q.XComPuller(run.DagID, run.RunID)}
	tc := operators.NewTaskContext(d, t, taskRun, discardLog{}, nil)
	render := func(option, src string) (string, error) { return operators.Render(ctx, tc, option, src) }
	args, err := mapping.Resolve(t, render, maxLen)
	if err != nil {
		return nil, err
	}
	insts := make([]store.NewInstance, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return nil, fmt.Errorf("task %s: instance %d's options: %w", t.ID, i, err)
		}
		insts[i].Args = b
		if t.Map.IndexTemplate != "" {
			if insts[i].IndexName, err = indexName(ctx, d, t, taskRun, i, b); err != nil {
				return nil, err
			}
		}
	}
	return insts, nil
}

// indexName renders map_index_template for instance i, which sees the
// instance's options ({{ task.<option> }}) and {{ ti.map_index }}.
func indexName(ctx context.Context, d *dag.DAG, t *dag.Task, run operators.TaskRun, i int, args []byte) (string, error) {
	inst, err := mapping.Instance(t, args)
	if err != nil {
		return "", err
	}
	run.Mapped, run.MapIndex = true, i
	tc := operators.NewTaskContext(d, inst, run, discardLog{}, nil)
	return operators.Render(ctx, tc, "map_index_template", t.Map.IndexTemplate)
}

// discardLog is the log of a render that no try owns.
type discardLog struct{}

func (discardLog) Printf(string, ...any) {}
func (discardLog) Line(string, string)   {}
