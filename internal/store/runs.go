package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/internal/runstate"
)

// Run is a DAG run.
type Run struct {
	PK                int64
	DagID             string
	RunID             string
	Hash              string
	RunType           string
	State             string
	LogicalDate       time.Time
	DataIntervalStart time.Time
	DataIntervalEnd   time.Time
	Conf              []byte // JSON object
	CreatedAt         time.Time
	StartedAt         *time.Time
	EndedAt           *time.Time
}

// NewRun is a run to create.
type NewRun struct {
	DagID             string
	RunID             string
	Hash              string
	RunType           string // scheduled | manual | backfill
	LogicalDate       time.Time
	DataIntervalStart time.Time
	DataIntervalEnd   time.Time
	Conf              []byte // JSON object; nil = {}
	MaxActiveTasks    int
}

const runColumns = `id, dag_id, run_id, dag_hash, run_type, state, logical_date, data_interval_start,
	data_interval_end, conf, created_at, started_at, ended_at`

func scanRun(r pgx.CollectableRow) (Run, error) {
	var x Run
	err := r.Scan(&x.PK, &x.DagID, &x.RunID, &x.Hash, &x.RunType, &x.State, &x.LogicalDate, &x.DataIntervalStart,
		&x.DataIntervalEnd, &x.Conf, &x.CreatedAt, &x.StartedAt, &x.EndedAt)
	return x, err
}

// CreateRun inserts a queued run unless (dag_id, run_id) exists; created
// tells which. Several schedulers may try the same run: one wins.
func (q Q) CreateRun(ctx context.Context, r NewRun) (pk int64, created bool, err error) {
	conf := r.Conf
	if conf == nil {
		conf = []byte("{}")
	}
	err = q.db.QueryRow(ctx, `INSERT INTO dag_runs (dag_id, run_id, dag_hash, run_type, state, logical_date,
		data_interval_start, data_interval_end, conf, max_active_tasks)
		VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9)
		ON CONFLICT (dag_id, run_id) DO NOTHING RETURNING id`,
		r.DagID, r.RunID, r.Hash, r.RunType, r.LogicalDate, r.DataIntervalStart, r.DataIntervalEnd, conf, r.MaxActiveTasks,
	).Scan(&pk)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("create run %s/%s: %w", r.DagID, r.RunID, err)
	}
	return pk, true, nil
}

// LatestLogicalDate is the newest logical date of a DAG's runs of a type
// (zero time if none).
func (q Q) LatestLogicalDate(ctx context.Context, dagID, runType string) (time.Time, error) {
	var t *time.Time
	err := q.db.QueryRow(ctx, `SELECT max(logical_date) FROM dag_runs WHERE dag_id = $1 AND run_type = $2`, dagID, runType).Scan(&t)
	if err != nil || t == nil {
		return time.Time{}, err
	}
	return *t, nil
}

// DagsWithQueuedRuns lists DAGs that have runs waiting to start.
func (q Q) DagsWithQueuedRuns(ctx context.Context) ([]string, error) {
	rows, err := q.db.Query(ctx, `SELECT DISTINCT dag_id FROM dag_runs WHERE state = 'queued'`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// RunsToStart returns the oldest queued runs of a DAG that fit under
// maxActive running runs. Call it holding the DAG's lock (LockDag).
func (q Q) RunsToStart(ctx context.Context, dagID string, maxActive int) ([]Run, error) {
	var running int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM dag_runs WHERE dag_id = $1 AND state = 'running'`, dagID).Scan(&running); err != nil {
		return nil, fmt.Errorf("count running runs of %s: %w", dagID, err)
	}
	free := maxActive - running
	if free <= 0 {
		return nil, nil
	}
	rows, err := q.db.Query(ctx, `SELECT `+runColumns+` FROM dag_runs WHERE dag_id = $1 AND state = 'queued'
		ORDER BY logical_date, id LIMIT $2`, dagID, free)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanRun)
}

// StartRun moves a run queued → running; false if it was not queued.
func (q Q) StartRun(ctx context.Context, pk int64) (bool, error) {
	tag, err := q.db.Exec(ctx, `UPDATE dag_runs SET state = 'running', started_at = clock_timestamp() WHERE id = $1 AND state = 'queued'`, pk)
	if err != nil {
		return false, fmt.Errorf("start run %d: %w", pk, err)
	}
	return tag.RowsAffected() == 1, nil
}

// FinishRun moves a run running → success or failed (state) and tells
// waiters at commit; false if it was not running.
func (q Q) FinishRun(ctx context.Context, pk int64, state string) (bool, error) {
	if state != runstate.RunSuccess && state != runstate.RunFailed {
		return false, fmt.Errorf("finish run %d: state %q is not %s or %s", pk, state, runstate.RunSuccess, runstate.RunFailed)
	}
	return q.finishRun(ctx, pk, state, "")
}

// finishRun is FinishRun with the failure's reason for the run's alerts (a
// SQL text expression, "" = its failed tasks).
func (q Q) finishRun(ctx context.Context, pk int64, state, reason string) (bool, error) {
	var n int
	err := q.db.QueryRow(ctx, `WITH moved AS (UPDATE dag_runs SET state = $2, ended_at = clock_timestamp()
			WHERE id = $1 AND state = 'running' RETURNING *)`+runAlerts("moved", reason)+`
		SELECT count(*) FROM moved`, pk, state).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("finish run %d: %w", pk, err)
	}
	if n == 1 {
		return true, q.Notify(ctx, ChannelTaskFinished, "")
	}
	return false, nil
}

// ReopenRun moves a finished run success|failed → running, for a clear that
// makes some of its tasks run again; false if it was not finished.
func (q Q) ReopenRun(ctx context.Context, pk int64) (bool, error) {
	tag, err := q.db.Exec(ctx, `UPDATE dag_runs SET state = 'running', ended_at = NULL,
		started_at = coalesce(started_at, clock_timestamp()) WHERE id = $1 AND state IN ('success', 'failed')`, pk)
	if err != nil {
		return false, fmt.Errorf("reopen run %d: %w", pk, err)
	}
	return tag.RowsAffected() == 1, nil
}

// RunTimeout is what FailForRunTimeout changed.
type RunTimeout struct {
	Finished bool  // the run went running → failed
	Failed   int64 // running or deferred task instances → failed
	Skipped  int64 // waiting task instances → skipped
}

// runTimedOut is the error of a run failed by FailForRunTimeout and of its
// tasks that were running.
const runTimedOut = "the run exceeded its dagrun_timeout"

// FailForRunTimeout fails a run past its dagrun_timeout: the run goes
// running → failed and, only if it did, its running and deferred task
// instances go to failed (ChannelTaskStopped tells their workers to stop
// them) and those
// still waiting (none, scheduled, queued, up_for_retry) go to skipped. A run
// that is no longer running changes nothing.
func (q Q) FailForRunTimeout(ctx context.Context, pk int64) (RunTimeout, error) {
	var res RunTimeout
	var err error
	if res.Finished, err = q.finishRun(ctx, pk, runstate.RunFailed, `'`+runTimedOut+`'`); err != nil || !res.Finished {
		return res, err
	}
	err = q.db.QueryRow(ctx, `WITH moved AS (UPDATE task_instances SET state = 'failed', error = '`+runTimedOut+`',
			`+appendHistory("'failed'", "try_number")+`
		WHERE run_pk = $1 AND state IN ('running', 'deferred') RETURNING *)`+taskAlerts("moved")+`
		SELECT count(*) FROM moved`, pk).Scan(&res.Failed)
	if err != nil {
		return res, fmt.Errorf("fail tasks of timed-out run %d: %w", pk, err)
	}
	tag, err := q.db.Exec(ctx, `UPDATE task_instances SET state = 'skipped', ended_at = clock_timestamp(),
			`+appendHistory("'skipped'", "try_number")+`
		WHERE run_pk = $1 AND state IN ('none', 'scheduled', 'queued', 'up_for_retry')`, pk)
	if err != nil {
		return res, fmt.Errorf("skip tasks of timed-out run %d: %w", pk, err)
	}
	res.Skipped = tag.RowsAffected()
	if res.Failed > 0 {
		return res, q.Notify(ctx, ChannelTaskStopped, "")
	}
	return res, nil
}

// RunningRuns lists every running run.
func (q Q) RunningRuns(ctx context.Context) ([]Run, error) {
	rows, err := q.db.Query(ctx, `SELECT `+runColumns+` FROM dag_runs WHERE state = 'running' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list running runs: %w", err)
	}
	return pgx.CollectRows(rows, scanRun)
}

// LockRun takes a run's row lock for this transaction. With skipLocked it
// returns false instead of waiting. Evaluating a run's readiness holds it, so
// two finishing tasks of one run never decide from stale states.
func (q Q) LockRun(ctx context.Context, pk int64, skipLocked bool) (Run, bool, error) {
	sql := `SELECT ` + runColumns + ` FROM dag_runs WHERE id = $1 FOR UPDATE`
	if skipLocked {
		sql += ` SKIP LOCKED`
	}
	rows, err := q.db.Query(ctx, sql, pk)
	if err != nil {
		return Run{}, false, fmt.Errorf("lock run %d: %w", pk, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, false, nil
	}
	if err != nil {
		return Run{}, false, fmt.Errorf("lock run %d: %w", pk, err)
	}
	return r, true, nil
}

// Runs lists runs, newest first; dagID "" = all DAGs.
func (q Q) Runs(ctx context.Context, dagID string, limit int) ([]Run, error) {
	rows, err := q.db.Query(ctx, `SELECT `+runColumns+` FROM dag_runs WHERE ($1 = '' OR dag_id = $1)
		ORDER BY logical_date DESC, id DESC LIMIT $2`, dagID, limit)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return pgx.CollectRows(rows, scanRun)
}

// Run returns one run by DAG and run id.
func (q Q) Run(ctx context.Context, dagID, runID string) (Run, error) {
	rows, err := q.db.Query(ctx, `SELECT `+runColumns+` FROM dag_runs WHERE dag_id = $1 AND run_id = $2`, dagID, runID)
	if err != nil {
		return Run{}, err
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, fmt.Errorf("run %s of dag %s: %w", runID, dagID, ErrNotFound)
	}
	return r, err
}

// DeleteFinishedRunsBefore deletes finished runs that ended before t, with
// their task instances, logs and XComs. It returns how many runs went.
func (q Q) DeleteFinishedRunsBefore(ctx context.Context, t time.Time) (int64, error) {
	if err := q.deleteXComsOfRunsFinishedBefore(ctx, t); err != nil {
		return 0, err
	}
	tag, err := q.db.Exec(ctx, `DELETE FROM dag_runs WHERE state IN ('success', 'failed') AND ended_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("delete old runs: %w", err)
	}
	return tag.RowsAffected(), nil
}

// RunFilter selects runs; zero fields do not filter.
type RunFilter struct {
	DagID                  string // "" = every DAG
	States                 []string
	LogicalGTE, LogicalLTE time.Time
	StartGTE, StartLTE     time.Time
	OrderBy                string // a key of RunOrders, "-" for descending
	Limit, Offset          int
}

// RunOrders are the fields run lists may be ordered by.
var RunOrders = map[string]string{
	"logical_date": "logical_date", "start_date": "started_at", "end_date": "ended_at",
	"state": "state", "dag_id": "dag_id", "dag_run_id": "run_id", "id": "id", "queued_at": "created_at",
}

// ListRuns returns a page of matching runs (newest logical date first unless
// ordered otherwise) and how many match in all.
func (q Q) ListRuns(ctx context.Context, f RunFilter) ([]Run, int, error) {
	order, err := orderClause(f.OrderBy, RunOrders, "-logical_date")
	if err != nil {
		return nil, 0, err
	}
	var w filter
	if f.DagID != "" {
		w.add("dag_id = $%d", f.DagID)
	}
	if len(f.States) > 0 {
		w.add("state = ANY($%d)", f.States)
	}
	for _, c := range []struct {
		cond string
		t    time.Time
	}{{"logical_date >= $%d", f.LogicalGTE}, {"logical_date <= $%d", f.LogicalLTE}, {"started_at >= $%d", f.StartGTE}, {"started_at <= $%d", f.StartLTE}} {
		if !c.t.IsZero() {
			w.add(c.cond, c.t)
		}
	}
	cond := w.clause()
	var total int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM dag_runs`+cond, w.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count runs: %w", err)
	}
	tie := "id DESC"
	if !strings.HasSuffix(order, "DESC") {
		tie = "id"
	}
	page := w.page(f.Limit, f.Offset)
	rows, err := q.db.Query(ctx, fmt.Sprintf(`SELECT `+runColumns+` FROM dag_runs%s ORDER BY %s, %s`, cond, order, tie)+page, w.args...)
	if err != nil {
		return nil, 0, fmt.Errorf("list runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanRun)
	if err != nil {
		return nil, 0, fmt.Errorf("list runs: %w", err)
	}
	return out, total, nil
}

// MarkRun sets a run's state by hand (success or failed), as Airflow's
// "mark run as": with success every unfinished task instance becomes
// success; with failed the running and deferred ones fail and those still
// waiting are skipped. A task instance that was running is stopped by its
// scheduler when it next checks (NotRunningAnyMore). changed is false when
// the run was in that state already. Waiters are told at commit.
func (q Q) MarkRun(ctx context.Context, pk int64, state string) (changed bool, err error) {
	if state != runstate.RunSuccess && state != runstate.RunFailed {
		return false, fmt.Errorf("%w: mark run: state %q is not %s or %s", ErrBadInput, state, runstate.RunSuccess, runstate.RunFailed)
	}
	tag, err := q.db.Exec(ctx, `UPDATE dag_runs SET state = $2, ended_at = clock_timestamp(),
		started_at = coalesce(started_at, clock_timestamp()) WHERE id = $1 AND state <> $2`, pk, state)
	if err != nil {
		return false, fmt.Errorf("mark run %d %s: %w", pk, state, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if state == runstate.RunSuccess {
		_, err = q.db.Exec(ctx, `UPDATE task_instances SET state = 'success', ended_at = clock_timestamp(),
				`+appendHistory("'success'", "try_number")+`
			WHERE run_pk = $1 AND state NOT IN ('success', 'failed', 'skipped', 'upstream_failed')`, pk)
	} else {
		_, err = q.db.Exec(ctx, `UPDATE task_instances SET state = CASE WHEN state IN ('running', 'deferred') THEN 'failed' ELSE 'skipped' END,
				ended_at = clock_timestamp(),
				`+appendHistory("CASE WHEN state IN ('running', 'deferred') THEN 'failed' ELSE 'skipped' END", "try_number")+`
			WHERE run_pk = $1 AND state NOT IN ('success', 'failed', 'skipped', 'upstream_failed')`, pk)
	}
	if err != nil {
		return false, fmt.Errorf("mark tasks of run %d %s: %w", pk, state, err)
	}
	return true, q.Notify(ctx, ChannelTaskFinished, "")
}

// DeleteRun deletes a run with its task instances, logs, triggers (by
// cascade) and XComs. Workers of its running tasks notice and stop them.
func (q Q) DeleteRun(ctx context.Context, run Run) error {
	if _, err := q.db.Exec(ctx, `DELETE FROM xcom WHERE dag_id = $1 AND run_id = $2`, run.DagID, run.RunID); err != nil {
		return fmt.Errorf("delete xcoms of %s/%s: %w", run.DagID, run.RunID, err)
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM dag_runs WHERE id = $1`, run.PK); err != nil {
		return fmt.Errorf("delete run %s/%s: %w", run.DagID, run.RunID, err)
	}
	return q.Notify(ctx, ChannelTaskFinished, "")
}

// RunStates maps runs (by primary key) to their states; a deleted run is
// missing. One statement for every run the API's waiters follow.
func (q Q) RunStates(ctx context.Context, pks []int64) (map[int64]string, error) {
	rows, err := q.db.Query(ctx, `SELECT id, state FROM dag_runs WHERE id = ANY($1)`, pks)
	if err != nil {
		return nil, fmt.Errorf("read run states: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]string, len(pks))
	for rows.Next() {
		var pk int64
		var s string
		if err := rows.Scan(&pk, &s); err != nil {
			return nil, err
		}
		out[pk] = s
	}
	return out, rows.Err()
}

// SetRunVersion moves a run to another version of its DAG (a clear with
// the latest version): its next tries run with that version.
func (q Q) SetRunVersion(ctx context.Context, pk int64, hash string) error {
	if _, err := q.db.Exec(ctx, `UPDATE dag_runs SET dag_hash = $2 WHERE id = $1`, pk, hash); err != nil {
		return fmt.Errorf("move run %d to version %.12s: %w", pk, hash, err)
	}
	return nil
}

// RunsBetween lists a DAG's runs whose logical dates fall in [from, to],
// oldest first (a backfill looks for the dates that already have one).
func (q Q) RunsBetween(ctx context.Context, dagID string, from, to time.Time) ([]Run, error) {
	rows, err := q.db.Query(ctx, `SELECT `+runColumns+` FROM dag_runs
		WHERE dag_id = $1 AND logical_date BETWEEN $2 AND $3 ORDER BY logical_date, id`, dagID, from, to)
	if err != nil {
		return nil, fmt.Errorf("runs of %s between %s and %s: %w", dagID, from, to, err)
	}
	return pgx.CollectRows(rows, scanRun)
}
