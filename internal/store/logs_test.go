package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/migrations"
)

// A try's lines are stored in chunks and read back line by line, paged by
// offset forwards and backwards, whatever the page boundaries.
func TestLogChunksReadLineByLine(t *testing.T) {
	b := setup(t)
	ti := b.ti(b.runningRun("logs", []string{"t"}), "t").ID
	const n = 2500
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var lines []store.LogLine
	for i := 1; i <= n; i++ {
		src := "stdout"
		if i%7 == 0 {
			src = "stderr"
		}
		lines = append(lines, store.LogLine{TIID: ti, TryNumber: 1, At: at.Add(time.Duration(i) * time.Millisecond), Source: src, Line: fmt.Sprintf("line %d", i)})
	}
	// Two flushes, the second with a line over the byte limit and the other try interleaved.
	if err := b.st.AppendLogs(b.ctx, lines[:1200]); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 70<<10)
	rest := append([]store.LogLine{}, lines[1200:1300]...)
	rest = append(rest, store.LogLine{TIID: ti, TryNumber: 2, At: at, Source: "podflow", Line: "try 2"})
	rest[50].Line = big
	rest = append(rest, lines[1300:]...)
	lines[1250].Line = big
	if err := b.st.AppendLogs(b.ctx, rest); err != nil {
		t.Fatal(err)
	}
	var chunks, maxLines int
	if err := b.st.Pool.QueryRow(b.ctx, `SELECT count(*), max(line_count) FROM task_log_chunks WHERE ti_id = $1 AND try_number = 1`, ti).Scan(&chunks, &maxLines); err != nil {
		t.Fatal(err)
	}
	if chunks < 3 || chunks > 8 || maxLines != 1000 {
		t.Errorf("%d lines in %d chunks of at most %d lines; want a handful of chunks of up to 1000", n, chunks, maxLines)
	}
	check := func(what string, got []store.LogLine, from int) {
		t.Helper()
		for i, l := range got {
			want := lines[from-1+i]
			if l.ID != int64(from+i) || l.Line != want.Line || l.Source != want.Source || !l.At.Equal(want.At) {
				t.Fatalf("%s: line %d = {%d %s %s %.20q}, want {%d %s %s %.20q}", what, i, l.ID, l.At, l.Source, l.Line, from+i, want.At, want.Source, want.Line)
			}
		}
	}
	all, err := b.st.Logs(b.ctx, ti, 1, 0)
	if err != nil || len(all) != n {
		t.Fatalf("Logs = %d lines, %v; want %d", len(all), err, n)
	}
	check("all", all, 1)
	for _, after := range []int{0, 1, 999, 1000, 1001, 1199, 1250, 2400} {
		page, err := b.st.LogPage(b.ctx, ti, 1, int64(after), 300)
		if err != nil || len(page) != min(300, n-after) {
			t.Fatalf("page after %d: %d lines, %v", after, len(page), err)
		}
		check(fmt.Sprintf("page after %d", after), page, after+1)
	}
	for _, before := range []int{0, 2501, 2000, 1001, 1000, 250} {
		page, err := b.st.LogPageBefore(b.ctx, ti, 1, int64(before), 300)
		end := before - 1
		if before == 0 {
			end = n
		}
		if err != nil || len(page) != min(300, end) {
			t.Fatalf("page before %d: %d lines, %v", before, len(page), err)
		}
		check(fmt.Sprintf("page before %d", before), page, end-len(page)+1)
	}
	other, err := b.st.Logs(b.ctx, ti, 2, 0)
	if err != nil || len(other) != 1 || other[0].Line != "try 2" || other[0].ID != 1 {
		t.Fatalf("try 2: %+v, %v", other, err)
	}
	var viewLine string // the line-by-line view for SQL by hand
	if err := b.st.Pool.QueryRow(b.ctx, `SELECT line FROM task_logs WHERE ti_id = $1 AND try_number = 1 AND id = 1999`, ti).Scan(&viewLine); err != nil || viewLine != "line 1999" {
		t.Fatalf("task_logs view line 1999 = %q, %v", viewLine, err)
	}
}

// Migration 0009 turns the one-row-per-line logs written before it into
// chunks of up to 1,000 lines, in their order, readable as before.
func TestLogChunksMigrateOldRows(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	apply := func(before bool) {
		for _, m := range all {
			if (m.Version < 9) == before {
				if _, err := pool.Exec(ctx, m.SQL); err != nil {
					t.Fatalf("%s: %v", m.Name, err)
				}
			}
		}
	}
	apply(true)
	fill := []string{
		`INSERT INTO dags (dag_id, path) VALUES ('old', 'old.yaml')`,
		`INSERT INTO dag_versions (hash, dag_id, source, path) VALUES ('h', 'old', '', 'old.yaml')`,
		`INSERT INTO dag_runs (dag_id, run_id, dag_hash, run_type, state, logical_date, data_interval_start, data_interval_end)
			VALUES ('old', 'r', 'h', 'manual', 'success', now(), now(), now())`,
		`INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, state, try_number) SELECT id, dag_id, run_id, 't', 'success', 2 FROM dag_runs`,
		// 1,500 lines of try 1 and 3 of try 2, interleaved as two tries' writers would.
		`INSERT INTO task_logs (ti_id, try_number, at, source, line)
			SELECT ti.id, CASE WHEN i % 500 = 0 THEN 2 ELSE 1 END, timestamptz '2026-01-01' + i * interval '1 ms', 'stdout', 'old ' || i
			FROM task_instances ti, generate_series(1, 1503) i`,
	}
	for _, s := range fill {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("%v\n%s", err, s)
		}
	}
	apply(false)
	st := store.New(pool)
	var tiID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM task_instances`).Scan(&tiID); err != nil {
		t.Fatal(err)
	}
	lines, err := st.Logs(ctx, tiID, 1, 0)
	if err != nil || len(lines) != 1500 {
		t.Fatalf("try 1 after the migration: %d lines, %v; want 1500", len(lines), err)
	}
	for i, l := range lines {
		n := i + 1 + i/499 // the lines 500, 1000 and 1500 went to try 2
		if l.ID != int64(i+1) || l.Line != fmt.Sprintf("old %d", n) {
			t.Fatalf("line %d = %d %q, want %d %q", i, l.ID, l.Line, i+1, fmt.Sprintf("old %d", n))
		}
	}
	if tail, err := st.LogPageBefore(ctx, tiID, 2, 0, 10); err != nil || len(tail) != 3 || tail[2].Line != "old 1500" {
		t.Fatalf("try 2 after the migration: %+v, %v", tail, err)
	}
	var chunks int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM task_log_chunks`).Scan(&chunks); err != nil || chunks != 3 {
		t.Fatalf("%d chunks, %v; want 3 (1000 + 500 lines of try 1, 3 of try 2)", chunks, err)
	}
	// New lines go after the migrated ones.
	if err := st.AppendLogs(ctx, []store.LogLine{{TIID: tiID, TryNumber: 1, At: time.Now(), Source: "podflow", Line: "new"}}); err != nil {
		t.Fatal(err)
	}
	if after, err := st.Logs(ctx, tiID, 1, 1500); err != nil || len(after) != 1 || after[0].ID != 1501 || after[0].Line != "new" {
		t.Fatalf("line after the migrated ones: %+v, %v", after, err)
	}
}

// Two writers of one try (a worker's periodic flush and the completer) that
// race for the log's end both land: every line once, offsets without gaps,
// each writer's lines in its order.
func TestLogChunksConcurrentWriters(t *testing.T) {
	b := setup(t)
	ti := b.ti(b.runningRun("race", []string{"t"}), "t").ID
	const writers, flushes, perFlush = 2, 40, 3
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for f := 0; f < flushes; f++ {
				var ls []store.LogLine
				for i := 0; i < perFlush; i++ {
					ls = append(ls, store.LogLine{TIID: ti, TryNumber: 1, At: time.Now(), Source: "stdout", Line: fmt.Sprintf("%d %d", w, f*perFlush+i)})
				}
				if err := b.st.AppendLogs(b.ctx, ls); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	lines, err := b.st.Logs(b.ctx, ti, 1, 0)
	if err != nil || len(lines) != writers*flushes*perFlush {
		t.Fatalf("%d lines, %v; want %d", len(lines), err, writers*flushes*perFlush)
	}
	next := make([]int, writers)
	for i, l := range lines {
		var w, n int
		if _, err := fmt.Sscanf(l.Line, "%d %d", &w, &n); err != nil {
			t.Fatal(err)
		}
		if l.ID != int64(i+1) || n != next[w] {
			t.Fatalf("line %d = offset %d %q; want offset %d and writer %d's line %d", i, l.ID, l.Line, i+1, w, next[w])
		}
		next[w]++
	}
}

// The completer's call: a few lines of many tries at once, interleaved,
// each try's lines read back in order after the ones it had.
func TestLogChunksManyTriesInOneCall(t *testing.T) {
	b := setup(t)
	r := b.runningRun("many", []string{"a", "b", "c"})
	tis := []int64{b.ti(r, "a").ID, b.ti(r, "b").ID, b.ti(r, "c").ID}
	if err := b.st.AppendLogs(b.ctx, []store.LogLine{{TIID: tis[0], TryNumber: 1, At: time.Now(), Source: "stdout", Line: "a0"}}); err != nil {
		t.Fatal(err)
	}
	var ls []store.LogLine
	for i := 1; i <= 4; i++ {
		for j, ti := range tis {
			ls = append(ls, store.LogLine{TIID: ti, TryNumber: 1, At: time.Now(), Source: "stdout", Line: fmt.Sprintf("%c%d", 'a'+j, i)})
		}
	}
	if err := b.st.AppendLogs(b.ctx, ls); err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := b.st.Pool.QueryRow(b.ctx, `SELECT count(*) FROM task_log_chunks`).Scan(&rows); err != nil || rows != 4 {
		t.Errorf("%d rows, %v; want 4 (a's first line, then one chunk per try)", rows, err)
	}
	for j, ti := range tis {
		lines, err := b.st.Logs(b.ctx, ti, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range lines {
			got = append(got, fmt.Sprintf("%d:%s", l.ID, l.Line))
		}
		want := "1:a1 2:a2 3:a3 4:a4"
		if j == 0 {
			want = "1:a0 2:a1 3:a2 4:a3 5:a4"
		}
		want = strings.NewReplacer("a", string(rune('a'+j))).Replace(want)
		if strings.Join(got, " ") != want {
			t.Errorf("try of %c: %s, want %s", 'a'+j, strings.Join(got, " "), want)
		}
	}
}
