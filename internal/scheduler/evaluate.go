package scheduler

import (
	"context"
	"fmt"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// evaluateRun decides a locked running run's next steps and applies them:
// queue ready tasks, mark upstream_failed/skipped, finish the run. It returns
// how many task instances were queued. Call it in a transaction holding the
// run's lock.
func (s *Scheduler) evaluateRun(ctx context.Context, q store.Q, run store.Run) (int, error) {
	d, err := s.dags.get(ctx, q, run.Hash)
	if err != nil {
		return 0, fmt.Errorf("evaluate run %s/%s: %w", run.DagID, run.RunID, err)
	}
	total := 0
	// A mapped task that ends without running (empty list, expansion
	// failure) can make its downstream decidable: decide again, at most
	// once per task.
	for pass := 0; pass <= len(d.Tasks); pass++ {
		n, again, err := s.decideRun(ctx, q, run, d)
		total += n
		if err != nil || !again {
			return total, err
		}
	}
	return total, nil
}

// decideRun is one pass of evaluateRun; again reports that a mapped task
// ended without running, so the run needs another pass.
func (s *Scheduler) decideRun(ctx context.Context, q store.Q, run store.Run, d *dag.DAG) (int, bool, error) {
	states, err := q.TaskStates(ctx, run.PK)
	if err != nil {
		return 0, false, err
	}
	dec := runstate.Decide(d, states)
	if dec.Empty() {
		return 0, false, nil
	}
	plain := dec.Queue[:0:0]
	mappedQueued, again := 0, false
	for _, id := range dec.Queue {
		t := d.Task(id)
		if t == nil || !t.Mapped() {
			plain = append(plain, id)
			continue
		}
		n, ended, err := s.queueMapped(ctx, q, run, d, t)
		if err != nil {
			return 0, false, err
		}
		mappedQueued += n
		again = again || ended
	}
	if again {
		// The run's final state is decided in the next pass, with the
		// mapped task's end known.
		dec.RunState = ""
	}
	queued, err := q.QueueReady(ctx, run.PK, plain)
	if err != nil {
		return 0, false, err
	}
	if _, err := q.MarkUpstreamFailed(ctx, run.PK, dec.UpstreamFailed); err != nil {
		return 0, false, err
	}
	if _, err := q.MarkSkipped(ctx, run.PK, dec.Skip); err != nil {
		return 0, false, err
	}
	if dec.RunState != "" {
		if _, err := q.FinishRun(ctx, run.PK, dec.RunState); err != nil {
			return 0, false, err
		}
		s.log.Info("run finished", "dag_id", run.DagID, "run_id", run.RunID, "state", dec.RunState)
	}
	return len(queued) + mappedQueued, again, nil
}
