package store

import (
	"context"
	"fmt"
	"math"
	"slices"
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

// lockLogEndsSQL serializes the writers of one try's log (a worker's
// periodic flush, the completer, the triggerer) until their transaction
// ends, so that each reads the log's end after the last writer committed.
// The keys come sorted: two writers never wait on each other in a circle.
const lockLogEndsSQL = `SELECT pg_advisory_xact_lock(` + logLockClass + `, k) FROM (SELECT k FROM unnest($1::integer[]) k ORDER BY k) s`

// logLockClass is the first key of the log writers' advisory locks (the
// second is the task instance id folded to 31 bits: a collision only makes
// two tries' writers wait for each other).
const logLockClass = "1886350951" // "plog"

// appendChunkSQL writes one chunk after its try's last line: for the tries
// with many lines in one call, where a statement per chunk of up to 1,000
// lines costs little.
const appendChunkSQL = `INSERT INTO task_log_chunks (ti_id, try_number, first_line, line_count, ats, sources, lines)
	SELECT $1::bigint, $2::integer, coalesce((SELECT first_line + line_count FROM task_log_chunks
			WHERE ti_id = $1 AND try_number = $2 ORDER BY first_line DESC LIMIT 1), 1),
		$3::integer, $4::timestamptz[], $5::text[], $6::text[]`

// appendSmallChunksSQL writes many tries' few lines (the completer's batch
// of finished tasks) in one statement, one chunk per try: the lines come
// flat with their chunk's index (k).
const appendSmallChunksSQL = `WITH m AS MATERIALIZED (
		SELECT * FROM unnest($1::bigint[], $2::integer[]) WITH ORDINALITY AS m(ti_id, try, k)),
	c AS MATERIALIZED (
		SELECT k, count(*)::integer AS n, array_agg(at ORDER BY i) AS ats, array_agg(source ORDER BY i) AS sources,
			array_agg(line ORDER BY i) AS lines
		FROM unnest($3::bigint[], $4::timestamptz[], $5::text[], $6::text[]) WITH ORDINALITY AS l(k, at, source, line, i)
		GROUP BY k)
	INSERT INTO task_log_chunks (ti_id, try_number, first_line, line_count, ats, sources, lines)
	SELECT m.ti_id, m.try, coalesce((SELECT x.first_line + x.line_count FROM task_log_chunks x
			WHERE x.ti_id = m.ti_id AND x.try_number = m.try ORDER BY x.first_line DESC LIMIT 1), 1),
		c.n, c.ats, c.sources, c.lines
	FROM m JOIN c ON c.k = m.k`

// smallChunkLines is the most lines a try may have in one call to go into
// the one-statement path (which costs more per line, less per try).
const smallChunkLines = 64

// AppendLogs stores log lines, each after the lines already stored for its
// try, as chunks: a few statements in one round trip, under the tries'
// write locks.
func (q Q) AppendLogs(ctx context.Context, lines []LogLine) error {
	chunks := chunkLogs(lines)
	if len(chunks) == 0 {
		return nil
	}
	type tryKey struct {
		ti  int64
		try int
	}
	perTry := map[tryKey]int{} // chunks of each try in this call
	keys := map[int32]bool{}
	for _, c := range chunks {
		perTry[tryKey{c.tiID, c.try}]++
		keys[int32(c.tiID%math.MaxInt32)] = true
	}
	lockKeys := make([]int32, 0, len(keys))
	for k := range keys {
		lockKeys = append(lockKeys, k)
	}
	slices.Sort(lockKeys)
	b := &pgx.Batch{}
	b.Queue(lockLogEndsSQL, lockKeys)
	var small struct {
		tis          []int64
		tries        []int32
		ks           []int64
		ats          []time.Time
		sources, txt []string
	}
	own := func(c logChunk) bool { // a statement of its own
		return perTry[tryKey{c.tiID, c.try}] > 1 || len(c.lines) > smallChunkLines
	}
	small1 := 0 // chunks for the one-statement path
	for _, c := range chunks {
		if !own(c) {
			small1++
		}
	}
	for _, c := range chunks {
		// A lone small chunk (a chain's one finished task) is a plain
		// insert too: the grouping statement costs more to plan (0.17 ms,
		// every call) than it saves for one.
		if own(c) || small1 == 1 {
			b.Queue(appendChunkSQL, c.tiID, c.try, len(c.lines), c.ats, c.sources, c.lines)
			continue
		}
		small.tis, small.tries = append(small.tis, c.tiID), append(small.tries, int32(c.try))
		for range c.lines {
			small.ks = append(small.ks, int64(len(small.tis)))
		}
		small.ats = append(small.ats, c.ats...)
		small.sources = append(small.sources, c.sources...)
		small.txt = append(small.txt, c.lines...)
	}
	if len(small.tis) > 0 {
		b.Queue(appendSmallChunksSQL, small.tis, small.tries, small.ks, small.ats, small.sources, small.txt)
	}
	res := q.db.SendBatch(ctx, b)
	for i := 0; i < b.Len(); i++ {
		if _, err := res.Exec(); err != nil {
			res.Close()
			return fmt.Errorf("store task log of task instance %d try %d (and %d more chunks): %w", chunks[0].tiID, chunks[0].try, len(chunks)-1, err)
		}
	}
	if err := res.Close(); err != nil {
		return fmt.Errorf("store task log: %w", err)
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
