package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

// LogResult holds the log-heavy workload's figures: one task printing
// Lines lines.
type LogResult struct {
	Lines       int
	Took        time.Duration // trigger → run success
	LinesPerSec float64
	Rows        int64 // task_log_chunks rows of the task
	Bytes       int64 // growth of task_log_chunks (table, TOAST and index)
	LastPage    time.Duration
	PageLines   int
}

// LogPageLines is the page a reader asks for (the API's page size).
const LogPageLines = 1000

// RunLogs measures, on st (an empty, migrated database), a task printing
// n lines (`seq n`): trigger → success, the rows and bytes its log takes,
// and the median time to read its last page as `podflow logs` and the API
// open a big log.
func RunLogs(ctx context.Context, st *store.Store, n, workers int, out io.Writer) (*LogResult, error) {
	dir, err := os.MkdirTemp("", "podflow-bench-logs-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src := fmt.Sprintf("dag_id: bench_logs\ntasks:\n  - {task_id: t0, operator: bash, bash_command: 'seq %d', do_xcom_push: false}\n", n)
	if err := os.WriteFile(filepath.Join(dir, "bench_logs.yaml"), []byte(src), 0o644); err != nil {
		return nil, err
	}
	ops := operators.NewRegistry(bash.New(), empty.New())
	folder := dag.NewParser(ops.Schemas()).LoadFolder(dir)
	if errs := folder.AllErrors(); len(errs) > 0 {
		return nil, errs
	}
	stop, err := startScheduler(ctx, st, ops, dir, workers)
	if err != nil {
		return nil, err
	}
	defer stop()
	var before int64
	if err := st.Pool.QueryRow(ctx, `SELECT pg_total_relation_size('task_log_chunks')`).Scan(&before); err != nil {
		return nil, err
	}
	took, err := timeRun(ctx, st, folder.DAG("bench_logs"))
	if err != nil {
		return nil, err
	}
	res := &LogResult{Lines: n, Took: took, LinesPerSec: float64(n) / took.Seconds()}
	var tiID, stored int64
	var try int
	err = st.Pool.QueryRow(ctx, `SELECT ti.id, ti.try_number, count(c.*), coalesce(sum(c.line_count), 0),
			pg_total_relation_size('task_log_chunks') - $1
		FROM task_instances ti LEFT JOIN task_log_chunks c ON c.ti_id = ti.id
		WHERE ti.dag_id = 'bench_logs' GROUP BY ti.id ORDER BY ti.id DESC LIMIT 1`, before).Scan(&tiID, &try, &res.Rows, &stored, &res.Bytes)
	if err != nil {
		return nil, fmt.Errorf("bench log size: %w", err)
	}
	if stored < int64(n) { // the run's success commits its last lines: all must be there
		return nil, fmt.Errorf("bench log: %d lines stored when the run succeeded, want at least %d", stored, n)
	}
	var reads []time.Duration
	for i := 0; i < 11; i++ {
		start := time.Now()
		page, err := st.LogPageBefore(ctx, tiID, try, 0, LogPageLines)
		if err != nil {
			return nil, err
		}
		reads = append(reads, time.Since(start))
		res.PageLines = len(page)
		if i == 0 && !containsLine(page, fmt.Sprint(n)) {
			return nil, fmt.Errorf("bench log: the last page (%d lines) lacks the task's last line %d", len(page), n)
		}
	}
	res.LastPage = median(reads)
	fmt.Fprintf(out, "(f) one task printing %d lines (`seq %d`): trigger → success %s, %.0f lines/s; %d rows, %.1f MiB in PostgreSQL; last page (%d lines) read in %s (median of %d)\n",
		n, n, took.Round(time.Millisecond), res.LinesPerSec, res.Rows, float64(res.Bytes)/(1<<20), res.PageLines, res.LastPage.Round(10*time.Microsecond), len(reads))
	return res, nil
}

func containsLine(lines []store.LogLine, s string) bool {
	for _, l := range lines {
		if l.Line == s {
			return true
		}
	}
	return false
}
