package scheduler

import (
	"context"
	"errors"
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
	// UseLatestVersion runs the cleared tasks with the DAG's current good
	// version instead of the one the run was created with (Airflow 3's
	// "rerun with the latest version"): the run moves to that version.
	UseLatestVersion bool
	// MapIndex, with one task in TaskIDs, clears only that mapped instance
	// of it (its downstream tasks whole, with IncludeDownstream).
	MapIndex *int
	// Audit, when set, is recorded in the clear's transaction.
	Audit *store.EventLog
}

// ClearResult is what a clear did (or, dry, would do).
type ClearResult struct {
	TaskIDs []string
	// Version is the DAG version the cleared tasks run with; Moved says it
	// is not the one the run had (UseLatestVersion with a newer file).
	Version string
	Moved   bool
	// Latest is the DAG's current version, for telling the user that a
	// pinned clear reruns an older one.
	Latest string
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
	res, err := ClearRunVersion(ctx, st, p, run, req)
	return res.TaskIDs, err
}

// ClearRunVersion is ClearRun saying which DAG version the cleared tasks
// run with.
func ClearRunVersion(ctx context.Context, st *store.Store, p *dag.Parser, run store.Run, req ClearRequest) (ClearResult, error) {
	res := ClearResult{Version: run.Hash}
	if row, err := st.Dag(ctx, run.DagID); err == nil {
		res.Latest = row.Hash
	}
	hash := run.Hash
	if req.UseLatestVersion {
		if res.Latest == "" {
			return res, fmt.Errorf("DAG %s has no good current version to rerun with: %w", run.DagID, store.ErrNotFound)
		}
		hash = res.Latest
	}
	d, err := VersionDAG(ctx, st.Q, p, hash)
	if err != nil {
		return res, err
	}
	if hash != run.Hash {
		old, err := VersionDAG(ctx, st.Q, p, run.Hash)
		if err != nil {
			return res, err
		}
		if added, removed := taskSetChange(old, d); len(added)+len(removed) > 0 {
			return res, fmt.Errorf("the current version of DAG %s (%.12s) adds tasks %v and removes %v: a run cannot move to it; "+
				"trigger a new run instead: %w", run.DagID, hash, added, removed, ErrVersionChange)
		}
		res.Version, res.Moved = hash, true
	}
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
		if res.TaskIDs, err = ClearTaskIDs(d, req, states); err != nil || req.DryRun || len(res.TaskIDs) == 0 {
			return err
		}
		if res.Moved {
			if err := q.SetRunVersion(ctx, run.PK, hash); err != nil {
				return err
			}
		}
		if err := clearTasks(ctx, q, locked, res.TaskIDs, req); err != nil {
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
	return res, err
}

// ErrVersionChange is a clear onto a DAG version with other tasks.
var ErrVersionChange = errors.New("the DAG's tasks changed")

// taskSetChange lists the tasks b adds to a and those it removes.
func taskSetChange(a, b *dag.DAG) (added, removed []string) {
	for _, t := range b.Tasks {
		if a.Task(t.ID) == nil {
			added = append(added, t.ID)
		}
	}
	for _, t := range a.Tasks {
		if b.Task(t.ID) == nil {
			removed = append(removed, t.ID)
		}
	}
	return added, removed
}

// clearTasks clears ids, or with req.MapIndex one instance of the first.
func clearTasks(ctx context.Context, q store.Q, run store.Run, ids []string, req ClearRequest) error {
	if req.MapIndex == nil {
		_, err := q.ClearTasks(ctx, run, ids)
		return err
	}
	if len(req.TaskIDs) != 1 || len(ids) == 0 || ids[0] != req.TaskIDs[0] {
		return fmt.Errorf("clear by map index: name exactly one task whose instance to clear: %w", store.ErrBadInput)
	}
	n, err := q.ClearMapIndex(ctx, run, ids[0], *req.MapIndex)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("task %s of run %s has no instance with map index %d: %w", ids[0], run.RunID, *req.MapIndex, store.ErrNotFound)
	}
	if rest := ids[1:]; len(rest) > 0 {
		_, err = q.ClearTasks(ctx, run, rest)
	}
	return err
}
