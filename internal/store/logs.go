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
	// ID is the line's offset in its try's log (1, 2, …): the cursor the
	// readers page by.
	ID        int64
	TIID      int64
	TryNumber int
	At        time.Time
	Source    string
	Line      string
}

// A try's log is stored in chunks (task_log_chunks): one row per flush of
// up to logChunkLines lines or logChunkBytes bytes of text. The table's
// CHECK holds the same line limit, which the readers rely on to find the
// chunk holding a given line from the primary key alone.
const (
	logChunkLines = 1000
	logChunkBytes = 64 << 10
)

// logChunk is a run of consecutive lines of one try, one row.
type logChunk struct {
	tiID    int64
	try     int
	ats     []time.Time
	sources []string
	lines   []string
}

// chunkLogs groups lines by try, keeping their order within each try, and
// cuts each try's lines into chunks of at most logChunkLines lines and
// logChunkBytes bytes (a longer line has a chunk of its own).
func chunkLogs(lines []LogLine) []logChunk {
	type tryKey struct {
		ti  int64
		try int
	}
	var chunks []logChunk
	open := map[tryKey]int{} // the try's last chunk, still filling
	size := map[tryKey]int{}
	for _, l := range lines {
		k := tryKey{l.TIID, l.TryNumber}
		i, ok := open[k]
		if ok && (len(chunks[i].lines) >= logChunkLines || size[k]+len(l.Line) > logChunkBytes) {
			ok = false
		}
		if !ok {
			chunks = append(chunks, logChunk{tiID: l.TIID, try: l.TryNumber})
			i, open[k], size[k] = len(chunks)-1, len(chunks)-1, 0
		}
		c := &chunks[i]
		c.ats = append(c.ats, l.At)
		c.sources = append(c.sources, l.Source)
		c.lines = append(c.lines, l.Line)
		size[k] += len(l.Line)
	}
	return chunks
}

// appendChunkSQL writes one chunk after the try's last one. Two writers of
// one try (a worker's periodic flush, the completer) may race for the same
// offset: the loser inserts nothing and is retried with the new end.
const appendChunkSQL = `INSERT INTO task_log_chunks (ti_id, try_number, first_line, line_count, ats, sources, lines)
	SELECT $1::bigint, $2::integer, coalesce((SELECT first_line + line_count FROM task_log_chunks
			WHERE ti_id = $1 AND try_number = $2 ORDER BY first_line DESC LIMIT 1), 1),
		$3::integer, $4::timestamptz[], $5::text[], $6::text[]
	ON CONFLICT DO NOTHING`

// AppendLogs stores log lines, each after the lines already stored for its
// try, as chunks sent in one round trip.
func (q Q) AppendLogs(ctx context.Context, lines []LogLine) error {
	pending := chunkLogs(lines)
	for attempt := 1; len(pending) > 0; attempt++ {
		if attempt > 10 {
			return fmt.Errorf("store task log of task instance %d try %d: the log's end kept moving (10 attempts)", pending[0].tiID, pending[0].try)
		}
		b := &pgx.Batch{}
		for _, c := range pending {
			b.Queue(appendChunkSQL, c.tiID, c.try, len(c.lines), c.ats, c.sources, c.lines)
		}
		res := q.db.SendBatch(ctx, b)
		var lost []logChunk
		for _, c := range pending {
			tag, err := res.Exec()
			if err != nil {
				res.Close()
				return fmt.Errorf("store task log of task instance %d try %d: %w", c.tiID, c.try, err)
			}
			if tag.RowsAffected() == 0 {
				lost = append(lost, c)
			}
		}
		if err := res.Close(); err != nil {
			return fmt.Errorf("store task log: %w", err)
		}
		pending = lost
	}
	return nil
}

// Logs reads a try's log lines after the line afterID.
func (q Q) Logs(ctx context.Context, tiID int64, try int, afterID int64) ([]LogLine, error) {
	return q.logsAfter(ctx, tiID, try, afterID, -1)
}

// LogPage reads at most limit of a try's log lines after the line afterID.
func (q Q) LogPage(ctx context.Context, tiID int64, try int, afterID int64, limit int) ([]LogLine, error) {
	if limit <= 0 {
		return nil, nil
	}
	return q.logsAfter(ctx, tiID, try, afterID, limit)
}

// logsAfter reads the lines after afterID, at most limit (-1: all). The
// chunk holding line afterID+1 starts at most logChunkLines-1 lines
// before it, which bounds the primary key's range from below; a running
// count of lines stops the read at the chunk that completes the page, so
// a page reads one or two chunks, not the rest of the log.
func (q Q) logsAfter(ctx context.Context, tiID int64, try int, afterID int64, limit int) ([]LogLine, error) {
	if afterID < 0 {
		afterID = 0
	}
	var lineLimit any // NULL: all
	if limit >= 0 {
		lineLimit = limit
	}
	rows, err := q.db.Query(ctx, `SELECT first_line, ats, sources, lines FROM (
			SELECT first_line, ats, sources, lines, sum(n) OVER (ORDER BY first_line) - n AS lines_before FROM (
				SELECT first_line, ats, sources, lines, least(line_count, first_line + line_count - 1 - $3::bigint) AS n
				FROM task_log_chunks
				WHERE ti_id = $1 AND try_number = $2 AND first_line > $3::bigint - $5::bigint
					AND first_line + line_count - 1 > $3::bigint) c) w
		WHERE $4::bigint IS NULL OR lines_before < $4::bigint
		ORDER BY first_line`, tiID, try, afterID, lineLimit, logChunkLines)
	if err != nil {
		return nil, fmt.Errorf("read task log: %w", err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		c, first, err := scanChunk(rows, tiID, try)
		if err != nil {
			return nil, err
		}
		for i := range c.lines {
			id := first + int64(i)
			if id <= afterID {
				continue
			}
			if limit >= 0 && len(out) == limit {
				return out, nil
			}
			out = append(out, LogLine{ID: id, TIID: tiID, TryNumber: try, At: c.ats[i], Source: c.sources[i], Line: c.lines[i]})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read task log: %w", err)
	}
	return out, nil
}

func scanChunk(rows pgx.Rows, tiID int64, try int) (logChunk, int64, error) {
	c := logChunk{tiID: tiID, try: try}
	var first int64
	if err := rows.Scan(&first, &c.ats, &c.sources, &c.lines); err != nil {
		return c, 0, fmt.Errorf("read task log: %w", err)
	}
	if len(c.ats) != len(c.lines) || len(c.sources) != len(c.lines) {
		return c, 0, fmt.Errorf("read task log of task instance %d try %d: chunk at line %d has %d lines but %d times and %d sources",
			tiID, try, first, len(c.lines), len(c.ats), len(c.sources))
	}
	return c, first, nil
}

// LogPageBefore reads the last limit of a try's log lines before the line
// beforeID (0: the log's end), in order: a big log opens at its tail.
func (q Q) LogPageBefore(ctx context.Context, tiID int64, try int, beforeID int64, limit int) ([]LogLine, error) {
	if limit <= 0 {
		return nil, nil
	}
	if beforeID <= 0 {
		beforeID = math.MaxInt64
	}
	// The running count of lines, from the end, stops the read at the chunk
	// that completes the page.
	rows, err := q.db.Query(ctx, `SELECT first_line, ats, sources, lines FROM (
			SELECT first_line, ats, sources, lines, sum(n) OVER (ORDER BY first_line DESC) - n AS lines_after FROM (
				SELECT first_line, ats, sources, lines, least(line_count, $3::bigint - first_line) AS n
				FROM task_log_chunks
				WHERE ti_id = $1 AND try_number = $2 AND first_line < $3::bigint) c) w
		WHERE lines_after < $4::bigint
		ORDER BY first_line DESC`, tiID, try, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("read task log: %w", err)
	}
	defer rows.Close()
	var rev []LogLine // newest first
	for rows.Next() && len(rev) < limit {
		c, first, err := scanChunk(rows, tiID, try)
		if err != nil {
			return nil, err
		}
		for i := len(c.lines) - 1; i >= 0 && len(rev) < limit; i-- {
			if id := first + int64(i); id < beforeID {
				rev = append(rev, LogLine{ID: id, TIID: tiID, TryNumber: try, At: c.ats[i], Source: c.sources[i], Line: c.lines[i]})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read task log: %w", err)
	}
	out := make([]LogLine, len(rev))
	for i, l := range rev {
		out[len(rev)-1-i] = l
	}
	return out, nil
}
