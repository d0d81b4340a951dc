package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/suggest"
)

// findRun is st.Run with a message a user can act on: the DAG has no such
// run (did you mean …?), or there is no such DAG at all.
func findRun(ctx context.Context, st *store.Store, dagID, runID string) (store.Run, error) {
	run, err := st.Run(ctx, dagID, runID)
	if !errors.Is(err, store.ErrNotFound) {
		return run, err
	}
	if _, derr := st.Dag(ctx, dagID); errors.Is(derr, store.ErrNotFound) {
		var ids []string
		if rows, err := st.Dags(ctx); err == nil {
			for _, r := range rows {
				ids = append(ids, r.DagID)
			}
		}
		return store.Run{}, &exitError{code: 1, msg: withSuggestion(fmt.Sprintf("no DAG %q", dagID), dagID, ids)}
	}
	var ids []string
	if runs, err := st.Runs(ctx, dagID, 200); err == nil {
		for _, r := range runs {
			ids = append(ids, r.RunID)
		}
	}
	return store.Run{}, &exitError{code: 1, msg: withSuggestion(fmt.Sprintf("DAG %s has no run %q", dagID, runID), runID, ids) +
		fmt.Sprintf(" (podflow runs list %s shows its runs)", dagID)}
}

// findTaskInstance is st.TaskInstance with a "did you mean" from the run's
// own tasks.
// findTaskInstanceAt is findTaskInstance for one instance of a mapped task
// (mapIndex -1: the task is not mapped).
func findTaskInstanceAt(ctx context.Context, st *store.Store, run store.Run, taskID string, mapIndex int) (store.TaskInstance, error) {
	if mapIndex < 0 {
		ti, err := findTaskInstance(ctx, st, run, taskID)
		if err != nil {
			if tis, lerr := st.TaskInstances(ctx, run.PK); lerr == nil {
				for _, t := range tis {
					if t.TaskID == taskID && t.MapIndex >= 0 {
						return ti, &exitError{code: 1, msg: fmt.Sprintf("task %s of run %s is mapped: say which instance with --map-index N", taskID, run.RunID)}
					}
				}
			}
		}
		return ti, err
	}
	ti, err := st.TaskInstanceAt(ctx, run.PK, taskID, mapIndex)
	if errors.Is(err, store.ErrNotFound) {
		return ti, &exitError{code: 1, msg: fmt.Sprintf("run %s of %s has no instance %d of task %q", run.RunID, run.DagID, mapIndex, taskID)}
	}
	return ti, err
}

func findTaskInstance(ctx context.Context, st *store.Store, run store.Run, taskID string) (store.TaskInstance, error) {
	ti, err := st.TaskInstance(ctx, run.PK, taskID)
	if !errors.Is(err, store.ErrNotFound) {
		return ti, err
	}
	var ids []string
	if tis, err := st.TaskInstances(ctx, run.PK); err == nil {
		for _, t := range tis {
			ids = append(ids, t.TaskID)
		}
	}
	return ti, &exitError{code: 1, msg: withSuggestion(fmt.Sprintf("run %s of %s has no task %q", run.RunID, run.DagID, taskID), taskID, ids)}
}

func withSuggestion(msg, word string, candidates []string) string {
	if c := suggest.Closest(word, candidates); c != "" {
		return fmt.Sprintf("%s; did you mean %q?", msg, c)
	}
	return msg
}
