package scheduler

import (
	"context"
	"fmt"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// Clearing makes task instances of a run run again: `podflow clear` and the
// API's clear endpoints both go through ClearRun.

// ClearRequest says which task instances of a run to clear.
type ClearRequest struct {
	TaskIDs           []string // none = every task of the run
	IncludeDownstream bool     // with TaskIDs: their downstream tasks too
	OnlyFailed        bool     // only those that failed or were upstream_failed
	DryRun            bool     // decide, change nothing
	// Audit, when set, is recorded in the clear's transaction.
	Audit *store.EventLog
}

// ClearTaskIDs picks the tasks a clear touches, from the run's DAG version:
// every task, or the named ones and (with IncludeDownstream) everything
// downstream of them, each once, in DAG order. An unknown task is an error.
func ClearTaskIDs(d *dag.DAG, req ClearRequest, states map[string]string) ([]string, error) {
	want := map[string]bool{}
	if len(req.TaskIDs) == 0 {
		for _, t := range d.Tasks {
			want[t.ID] = true
		}
	}
	for _, id := range req.TaskIDs {
		if d.Task(id) == nil {
			return nil, fmt.Errorf("DAG %s has no task %q: %w", d.ID, id, store.ErrNotFound)
		}
		want[id] = true
		if req.IncludeDownstream {
			for _, down := range d.DownstreamAll(id) {
				want[down] = true
			}
		}
	}
	var ids []string
	for _, t := range d.Tasks {
		if !want[t.ID] {
			continue
		}
		if req.OnlyFailed && states[t.ID] != runstate.Failed && states[t.ID] != runstate.UpstreamFailed {
			continue
		}
		ids = append(ids, t.ID)
	}
	return ids, nil
}

// ClearRun clears task instances of a run (see ClearRequest) in one
// transaction holding the run's lock, reopens the run if it had finished and
// wakes the schedulers. It returns the task ids cleared (or, with DryRun,
// that would be).
func ClearRun(ctx context.Context, st *store.Store, p *dag.Parser, run store.Run, req ClearRequest) ([]string, error) {
	d, err := VersionDAG(ctx, st.Q, p, run.Hash)
	if err != nil {
		return nil, err
	}
	var ids []string
	err = st.InTx(ctx, func(q store.Q) error {
		locked, ok, err := q.LockRun(ctx, run.PK, false)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("run %s of dag %s: %w", run.RunID, run.DagID, store.ErrNotFound)
		}
		states, err := q.TaskStates(ctx, run.PK)
		if err != nil {
			return err
		}
		if ids, err = ClearTaskIDs(d, req, states); err != nil || req.DryRun || len(ids) == 0 {
			return err
		}
		if _, err = q.ClearTasks(ctx, locked, ids); err != nil {
			return err
		}
		if locked.State != runstate.RunRunning && locked.State != runstate.RunQueued {
			if _, err := q.ReopenRun(ctx, run.PK); err != nil {
				return err
			}
		}
		if req.Audit != nil {
			if err := q.RecordEvent(ctx, *req.Audit); err != nil {
				return err
			}
		}
		return q.Notify(ctx, store.ChannelSchedulerWake, "")
	})
	return ids, err
}
