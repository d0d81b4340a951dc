package store

import (
	"context"
	"fmt"
)

// TaskStateCounts counts task instances by state.
func (q Q) TaskStateCounts(ctx context.Context) (map[string]int, error) {
	rows, err := q.db.Query(ctx, `SELECT state, count(*) FROM task_instances GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count task instances: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// TriggerCount counts waiting triggers.
func (q Q) TriggerCount(ctx context.Context) (int, error) {
	var n int
	err := q.db.QueryRow(ctx, `SELECT count(*) FROM triggers`).Scan(&n)
	return n, err
}
