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

// LatestHeartbeat is the newest heartbeat of any process of a kind
// (scheduler, triggerer); ok is false when there is none.
func (q Q) LatestHeartbeat(ctx context.Context, kind string) (time.Time, bool, error) {
	var at *time.Time
	if err := q.db.QueryRow(ctx, `SELECT max(heartbeat_at) FROM heartbeats WHERE kind = $1`, kind).Scan(&at); err != nil {
		return time.Time{}, false, fmt.Errorf("read %s heartbeats: %w", kind, err)
	}
	if at == nil {
		return time.Time{}, false, nil
	}
	return *at, true, nil
}
