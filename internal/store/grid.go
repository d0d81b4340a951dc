package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TaskCell is one task instance's place in the web UI's grid.
type TaskCell struct {
	RunPK    int64
	TaskID   string
	MapIndex int
	State    string
}

// TaskCells reads the states of every task instance of the runs pks, in
// one statement (the unique index on run_pk, task_id, map_index serves it).
func (q Q) TaskCells(ctx context.Context, pks []int64) ([]TaskCell, error) {
	if len(pks) == 0 {
		return nil, nil
	}
	rows, err := q.db.Query(ctx, `SELECT run_pk, task_id, map_index, state FROM task_instances WHERE run_pk = ANY($1)`, pks)
	if err != nil {
		return nil, fmt.Errorf("read task states of %d runs: %w", len(pks), err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TaskCell, error) {
		var c TaskCell
		err := r.Scan(&c.RunPK, &c.TaskID, &c.MapIndex, &c.State)
		return c, err
	})
}
