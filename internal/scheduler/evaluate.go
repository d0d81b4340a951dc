package scheduler

import (
	"context"
	"fmt"

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
	states, err := q.TaskStates(ctx, run.PK)
	if err != nil {
		return 0, err
	}
	dec := runstate.Decide(d, states)
	if dec.Empty() {
		return 0, nil
	}
	queued, err := q.QueueReady(ctx, run.PK, dec.Queue)
	if err != nil {
		return 0, err
	}
	if _, err := q.MarkUpstreamFailed(ctx, run.PK, dec.UpstreamFailed); err != nil {
		return 0, err
	}
	if _, err := q.MarkSkipped(ctx, run.PK, dec.Skip); err != nil {
		return 0, err
	}
	if dec.RunState != "" {
		if _, err := q.FinishRun(ctx, run.PK, dec.RunState); err != nil {
			return 0, err
		}
		s.log.Info("run finished", "dag_id", run.DagID, "run_id", run.RunID, "state", dec.RunState)
	}
	return len(queued), nil
}
