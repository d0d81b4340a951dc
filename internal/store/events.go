package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// EventLog is one audit-log entry: a change made through the API or the CLI.
type EventLog struct {
	ID     int64           `json:"event_log_id"`
	At     time.Time       `json:"when"`
	Actor  string          `json:"owner"`
	Source string          `json:"source"`
	Event  string          `json:"event"`
	DagID  string          `json:"dag_id,omitempty"`
	RunID  string          `json:"run_id,omitempty"`
	TaskID string          `json:"task_id,omitempty"`
	Extra  json.RawMessage `json:"extra,omitempty"`
}

// EventFilter selects audit-log entries; zero fields do not filter.
type EventFilter struct {
	DagID  string
	Event  string
	Actor  string
	Since  time.Time
	Before time.Time
	Limit  int // default 100
	Offset int
}

// RecordEvent appends one entry to the audit log. Call it in the same
// transaction as the change it records, so a change is never unrecorded.
func (q Q) RecordEvent(ctx context.Context, e EventLog) error {
	extra := e.Extra
	if len(extra) == 0 {
		extra = json.RawMessage(`{}`)
	}
	_, err := q.db.Exec(ctx, `INSERT INTO event_log (actor, source, event, dag_id, run_id, task_id, extra)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), $7)`,
		e.Actor, e.Source, e.Event, e.DagID, e.RunID, e.TaskID, extra)
	if err != nil {
		return fmt.Errorf("record %s event: %w", e.Event, err)
	}
	return nil
}

// ListEvents returns matching audit-log entries, newest first, and how many
// match in all.
func (q Q) ListEvents(ctx context.Context, f EventFilter) ([]EventLog, int, error) {
	var w filter
	if f.DagID != "" {
		w.add("dag_id = $%d", f.DagID)
	}
	if f.Event != "" {
		w.add("event = $%d", f.Event)
	}
	if f.Actor != "" {
		w.add("actor = $%d", f.Actor)
	}
	if !f.Since.IsZero() {
		w.add("at >= $%d", f.Since)
	}
	if !f.Before.IsZero() {
		w.add("at < $%d", f.Before)
	}
	cond := w.clause()
	var total int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM event_log`+cond, w.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count events: %w", err)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	page := w.page(limit, f.Offset)
	rows, err := q.db.Query(ctx, `SELECT id, at, actor, source, event,
		coalesce(dag_id, ''), coalesce(run_id, ''), coalesce(task_id, ''), extra
		FROM event_log`+cond+` ORDER BY at DESC, id DESC`+page, w.args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list events: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EventLog, error) {
		var e EventLog
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Source, &e.Event, &e.DagID, &e.RunID, &e.TaskID, &e.Extra)
		return e, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list events: %w", err)
	}
	return out, total, nil
}
