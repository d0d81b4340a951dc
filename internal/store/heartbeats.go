package store

import (
	"context"
	"fmt"
	"time"
)

// Heartbeat records that process id is alive.
func (q Q) Heartbeat(ctx context.Context, id, kind, hostname string, pid int) error {
	_, err := q.db.Exec(ctx, `INSERT INTO heartbeats (id, kind, hostname, pid) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, id, kind, hostname, pid)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// RemoveHeartbeat deletes a process's heartbeat on clean shutdown.
func (q Q) RemoveHeartbeat(ctx context.Context, id string) error {
	_, err := q.db.Exec(ctx, `DELETE FROM heartbeats WHERE id = $1`, id)
	return err
}

// HeartbeatAge returns how old a process's heartbeat is; ok false if none.
func (q Q) HeartbeatAge(ctx context.Context, id string) (time.Duration, bool, error) {
	var age *time.Duration
	err := q.db.QueryRow(ctx, `SELECT now() - heartbeat_at FROM heartbeats WHERE id = $1`, id).Scan(&age)
	if err != nil || age == nil {
		return 0, false, nil
	}
	return *age, true, nil
}

// DeleteStaleHeartbeats removes heartbeats older than age (dead processes).
func (q Q) DeleteStaleHeartbeats(ctx context.Context, age time.Duration) error {
	_, err := q.db.Exec(ctx, `DELETE FROM heartbeats WHERE heartbeat_at < now() - $1::interval`, age.String())
	return err
}

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

// Ping checks the database answers.
func (q Q) Ping(ctx context.Context) error {
	var one int
	return q.db.QueryRow(ctx, `SELECT 1`).Scan(&one)
}
