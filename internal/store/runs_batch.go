package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Batched run creation and start, for the moment thousands of DAGs are due
// at once ("top of the hour", or a scheduler's first sync): a few
// statements per batch instead of a few per DAG. They are the same guarded,
// idempotent statements as the one-run ones, so several schedulers sharing
// a storm still never create or start a run twice.

// LatestLogicalDates is LatestLogicalDate for many DAGs in one statement:
// dag_id → newest logical date of its runs of runType (absent: none).
func (q Q) LatestLogicalDates(ctx context.Context, dagIDs []string, runType string) (map[string]time.Time, error) {
	rows, err := q.db.Query(ctx, `SELECT d.dag_id, l.logical_date
		FROM unnest($1::text[]) AS d(dag_id)
		CROSS JOIN LATERAL (SELECT max(logical_date) AS logical_date FROM dag_runs r
			WHERE r.dag_id = d.dag_id AND r.run_type = $2) AS l
		WHERE l.logical_date IS NOT NULL`, dagIDs, runType)
	if err != nil {
		return nil, fmt.Errorf("latest logical dates: %w", err)
	}
	out := make(map[string]time.Time, len(dagIDs))
	var id string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		out[id] = at
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("latest logical dates: %w", err)
	}
	return out, nil
}

// CreateRuns creates queued runs in one statement; a run whose (dag_id,
// run_id) exists is left alone. It returns the runs it created and wakes
// the schedulers once when there are any.
func (q Q) CreateRuns(ctx context.Context, runs []NewRun) ([]NewRun, error) {
	if len(runs) == 0 {
		return nil, nil
	}
	n := len(runs)
	dagIDs, runIDs, hashes, types := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	logical, starts, ends := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	confs, maxTasks := make([]string, n), make([]int32, n)
	for i, r := range runs {
		dagIDs[i], runIDs[i], hashes[i], types[i] = r.DagID, r.RunID, r.Hash, r.RunType
		logical[i], starts[i], ends[i] = r.LogicalDate, r.DataIntervalStart, r.DataIntervalEnd
		confs[i], maxTasks[i] = "{}", int32(r.MaxActiveTasks)
		if len(r.Conf) > 0 {
			confs[i] = string(r.Conf)
		}
	}
	rows, err := q.db.Query(ctx, `INSERT INTO dag_runs (dag_id, run_id, dag_hash, run_type, state, logical_date,
			data_interval_start, data_interval_end, conf, max_active_tasks)
		SELECT d, r, h, t, 'queued', l, s, e, c::jsonb, m
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[],
			$7::timestamptz[], $8::text[], $9::int[]) AS u(d, r, h, t, l, s, e, c, m)
		ON CONFLICT (dag_id, run_id) DO NOTHING
		RETURNING dag_id, run_id`,
		dagIDs, runIDs, hashes, types, logical, starts, ends, confs, maxTasks)
	if err != nil {
		return nil, fmt.Errorf("create %d runs: %w", n, err)
	}
	created := map[[2]string]bool{}
	var d, r string
	if _, err := pgx.ForEachRow(rows, []any{&d, &r}, func() error {
		created[[2]string{d, r}] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("create %d runs: %w", n, err)
	}
	var out []NewRun
	for _, run := range runs {
		if created[[2]string{run.DagID, run.RunID}] {
			out = append(out, run)
		}
	}
	if len(out) > 0 {
		return out, q.Notify(ctx, ChannelSchedulerWake, "")
	}
	return out, nil
}

// DagsWithQueuedRunsByLateness lists the DAGs that have runs waiting to
// start, the one whose oldest waiting run is the latest (earliest data
// interval end) first, so that a storm starts runs in order of how late
// they are rather than by name.
func (q Q) DagsWithQueuedRunsByLateness(ctx context.Context) ([]string, error) {
	rows, err := q.db.Query(ctx, `SELECT dag_id FROM dag_runs WHERE state = 'queued'
		GROUP BY dag_id ORDER BY min(data_interval_end), dag_id`)
	if err != nil {
		return nil, fmt.Errorf("dags with queued runs: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// LockDags locks the rows of the given DAGs that no one else holds (FOR
// UPDATE SKIP LOCKED) and returns their ids: a second scheduler in the same
// storm takes the others.
func (q Q) LockDags(ctx context.Context, dagIDs []string) ([]string, error) {
	rows, err := q.db.Query(ctx, `SELECT dag_id FROM dags WHERE dag_id = ANY($1) ORDER BY dag_id FOR UPDATE SKIP LOCKED`, dagIDs)
	if err != nil {
		return nil, fmt.Errorf("lock %d dags: %w", len(dagIDs), err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// RunsToStartBatch is RunsToStart for many DAGs in one statement: for each
// DAG (dag_id → max_active_runs) its oldest queued runs that fit under the
// limit, latest first across DAGs. Call it holding the DAGs' locks.
func (q Q) RunsToStartBatch(ctx context.Context, maxActive map[string]int) ([]Run, error) {
	ids := make([]string, 0, len(maxActive))
	limits := make([]int32, 0, len(maxActive))
	for id, m := range maxActive {
		ids, limits = append(ids, id), append(limits, int32(m))
	}
	rows, err := q.db.Query(ctx, `WITH lim AS (
			SELECT dag_id, max_active FROM unnest($1::text[], $2::int[]) AS u(dag_id, max_active)
		), running AS (
			SELECT r.dag_id, count(*) AS n FROM dag_runs r JOIN lim USING (dag_id)
			WHERE r.state = 'running' GROUP BY r.dag_id
		), waiting AS (
			SELECT r.id, r.dag_id, r.data_interval_end,
				row_number() OVER (PARTITION BY r.dag_id ORDER BY r.logical_date, r.id) AS rn
			FROM dag_runs r JOIN lim USING (dag_id) WHERE r.state = 'queued'
		)
		SELECT `+prefixed("r.", runColumns)+` FROM waiting w
		JOIN lim USING (dag_id)
		LEFT JOIN running USING (dag_id)
		JOIN dag_runs r ON r.id = w.id
		WHERE w.rn <= lim.max_active - coalesce(running.n, 0)
		ORDER BY w.data_interval_end, w.dag_id, w.rn`, ids, limits)
	if err != nil {
		return nil, fmt.Errorf("runs to start: %w", err)
	}
	return pgx.CollectRows(rows, scanRun)
}

// StartRuns moves runs queued → running and returns the ids of those that
// were queued (the others are left alone).
func (q Q) StartRuns(ctx context.Context, pks []int64) (map[int64]bool, error) {
	rows, err := q.db.Query(ctx, `UPDATE dag_runs SET state = 'running', started_at = clock_timestamp()
		WHERE id = ANY($1) AND state = 'queued' RETURNING id`, pks)
	if err != nil {
		return nil, fmt.Errorf("start %d runs: %w", len(pks), err)
	}
	started := make(map[int64]bool, len(pks))
	var id int64
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		started[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("start %d runs: %w", len(pks), err)
	}
	return started, nil
}

// RunTasks are the task instances to create for one run.
type RunTasks struct {
	Run   Run
	Specs []TaskSpec
}

// InsertTaskInstancesBatch is InsertTaskInstances for many runs in one
// statement, with one NOTIFY when any task was created queued.
func (q Q) InsertTaskInstancesBatch(ctx context.Context, batch []RunTasks) error {
	var runPKs []int64
	var dagIDs, runIDs, ids, pools []string
	var tries, prios, perDag, perRun []int32
	var queued []bool
	anyQueued := false
	for _, b := range batch {
		for _, s := range b.Specs {
			runPKs, dagIDs, runIDs = append(runPKs, b.Run.PK), append(dagIDs, b.Run.DagID), append(runIDs, b.Run.RunID)
			ids, tries, pools = append(ids, s.TaskID), append(tries, int32(s.MaxTries)), append(pools, s.Pool)
			prios, queued = append(prios, int32(s.Priority)), append(queued, s.Queued)
			perDag, perRun = append(perDag, int32(s.MaxActivePerDag)), append(perRun, int32(s.MaxActivePerRun))
			anyQueued = anyQueued || s.Queued
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := q.db.Exec(ctx, `INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, max_tries, pool, priority_weight,
			state, queued_at, transitions, max_active_per_dag, max_active_per_run)
		SELECT k, d, r, t, m, p, w,
			CASE WHEN qd THEN 'queued' ELSE 'none' END,
			CASE WHEN qd THEN clock_timestamp() END,
			CASE WHEN qd THEN `+transition("'queued'", "0")+` ELSE '' END,
			nullif(pd, 0), nullif(pr, 0)
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::int[], $8::bool[],
			$9::int[], $10::int[]) AS u(k, d, r, t, m, p, w, qd, pd, pr)
		ON CONFLICT (run_pk, task_id, map_index) DO NOTHING`,
		runPKs, dagIDs, runIDs, ids, tries, pools, prios, queued, perDag, perRun)
	if err != nil {
		return fmt.Errorf("create task instances of %d runs: %w", len(batch), err)
	}
	if anyQueued {
		return q.Notify(ctx, ChannelTaskQueued, "")
	}
	return nil
}

// prefixed qualifies each column of a comma-separated list with a table
// alias ("r." + "id, dag_id" → "r.id, r.dag_id").
func prefixed(alias, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
