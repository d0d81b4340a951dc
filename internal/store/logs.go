package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// LogLine is one line of a task instance's log.
type LogLine struct {
	ID        int64
	TIID      int64
	TryNumber int
	At        time.Time
	Source    string
	Line      string
}

// AppendLogs stores log lines.
func (q Q) AppendLogs(ctx context.Context, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	_, err := q.db.CopyFrom(ctx, pgx.Identifier{"task_logs"}, []string{"ti_id", "try_number", "at", "source", "line"},
		pgx.CopyFromSlice(len(lines), func(i int) ([]any, error) {
			l := lines[i]
			return []any{l.TIID, l.TryNumber, l.At, l.Source, l.Line}, nil
		}))
	if err != nil {
		return fmt.Errorf("store task log: %w", err)
	}
	return nil
}

// Logs reads a try's log lines after the line id afterID.
func (q Q) Logs(ctx context.Context, tiID int64, try int, afterID int64) ([]LogLine, error) {
	rows, err := q.db.Query(ctx, `SELECT id, ti_id, try_number, at, source, line FROM task_logs
		WHERE ti_id = $1 AND try_number = $2 AND id > $3 ORDER BY id`, tiID, try, afterID)
	if err != nil {
		return nil, fmt.Errorf("read task log: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (LogLine, error) {
		var l LogLine
		err := r.Scan(&l.ID, &l.TIID, &l.TryNumber, &l.At, &l.Source, &l.Line)
		return l, err
	})
}

// LogPage reads at most limit of a try's log lines after the line id afterID.
func (q Q) LogPage(ctx context.Context, tiID int64, try int, afterID int64, limit int) ([]LogLine, error) {
	rows, err := q.db.Query(ctx, `SELECT id, ti_id, try_number, at, source, line FROM task_logs
		WHERE ti_id = $1 AND try_number = $2 AND id > $3 ORDER BY id LIMIT $4`, tiID, try, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("read task log: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (LogLine, error) {
		var l LogLine
		err := r.Scan(&l.ID, &l.TIID, &l.TryNumber, &l.At, &l.Source, &l.Line)
		return l, err
	})
}

// LogPageBefore reads the last limit of a try's log lines before the line
// id beforeID (0: the log's end), in order: a big log opens at its tail.
func (q Q) LogPageBefore(ctx context.Context, tiID int64, try int, beforeID int64, limit int) ([]LogLine, error) {
	if beforeID <= 0 {
		beforeID = math.MaxInt64
	}
	rows, err := q.db.Query(ctx, `SELECT id, ti_id, try_number, at, source, line FROM (
		SELECT id, ti_id, try_number, at, source, line FROM task_logs
		WHERE ti_id = $1 AND try_number = $2 AND id < $3 ORDER BY id DESC LIMIT $4) last ORDER BY id`, tiID, try, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("read task log: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (LogLine, error) {
		var l LogLine
		err := r.Scan(&l.ID, &l.TIID, &l.TryNumber, &l.At, &l.Source, &l.Line)
		return l, err
	})
}
