package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Claimed is a task instance claimed by a worker, with its run's details.
type Claimed struct {
	TaskInstance
	Hash              string
	LogicalDate       time.Time
	DataIntervalStart time.Time
	DataIntervalEnd   time.Time
	Conf              []byte
	// AssetEvents are the run's triggering asset events (JSON list of
	// AssetEvent), nil unless the run is asset-triggered.
	AssetEvents []byte
}

// movedColumns are what a claim or a finish returns: what the worker and the
// alerts CTE read, not the state history (which only grows).
const movedColumns = `ti.id, ti.run_pk, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.state, ti.try_number, ti.max_tries,
	ti.pool, ti.priority_weight, ti.queued_at, ti.started_at, ti.ended_at, ti.next_retry_at, ti.owner_id, ti.next_method,
	ti.next_event, ti.external_ns, ti.external_name, ti.error, ti.mapped_args, ti.rendered_map_index`

// claimLockKey serialises claiming across schedulers so pool and
// max_active_tasks limits hold; each claim takes a batch, so this costs one
// short transaction per batch.
const claimLockKey = 0x706f64636c61696d

// Limits bound how many task instances may run at once.
type Limits struct {
	Pools       map[string]int // pool → slots
	DefaultSlot int            // slots of a pool not in Pools
}

// ClaimTasks moves up to n queued task instances to running for owner, in
// priority order, within pool slots, each DAG's max_active_tasks and each
// task's max_active_tis_per_dag and max_active_tis_per_dagrun. A
// task instance resuming after a deferral keeps its try number.
func (q Q) ClaimTasks(ctx context.Context, owner string, n int, lim Limits) ([]Claimed, error) {
	// The planner's idea of task_instances is always stale for a queue: a
	// burst of runs queues thousands between two ANALYZEs, which still say
	// a hundred, and a generic plan cached while the table was small stays
	// cached as it grows. With those estimates it read the candidates with
	// a bitmap scan and sorted them, reading every queued row on every claim
	// (25 ms at 20,000 queued, quadratic over a backlog), and found the
	// claimed ids with a sequential scan (12 ms at 20,000 rows, growing
	// with the table), where the task_instances_queued index gives the
	// candidates in order (the LIMIT stops after 2n) and the primary key
	// finds the ids. Bitmap and sequential scans are off for the rest of
	// this transaction, which ends with the claim in every caller; every
	// plan of these statements is made under the same settings.
	if _, err := q.db.Exec(ctx, `SELECT pg_advisory_xact_lock($1), set_config('enable_bitmapscan', 'off', true),
			set_config('enable_seqscan', 'off', true)`, claimLockKey); err != nil {
		return nil, fmt.Errorf("claim lock: %w", err)
	}
	type cand struct {
		id             int64
		pool, dagID    string
		maxActiveTasks int
		kind           int // 0: a candidate; 1: running counts by pool and DAG; 2: active counts of a throttled task
		count          int
		priority       int
		queuedAt       time.Time
		// The task's max_active_tis_per_dag / _per_dagrun (0: none).
		taskID         string
		runPK          int64
		perDag, perRun int
	}
	// One statement, after the lock: the candidates and what runs now. A
	// throttled task's deferred instances count as active too: a deferred
	// pod is still running.
	//
	// A throttled task's queued instances beyond what its limits leave room
	// for are kept out of the candidates (blocked), so a thousand queued
	// instances of a task that may run four at once do not fill the
	// candidate window and starve the tasks queued after them.
	rows, err := q.db.Query(ctx, `WITH throttled AS MATERIALIZED (
			SELECT ti.id, ti.dag_id, ti.task_id, ti.run_pk, ti.max_active_per_dag, ti.max_active_per_run,
				row_number() OVER (PARTITION BY ti.dag_id, ti.task_id ORDER BY ti.priority_weight DESC, ti.queued_at, ti.id) AS dag_rank,
				row_number() OVER (PARTITION BY ti.run_pk, ti.task_id ORDER BY ti.priority_weight DESC, ti.queued_at, ti.id) AS run_rank
			FROM task_instances ti
			WHERE ti.state = 'queued' AND (ti.max_active_per_dag IS NOT NULL OR ti.max_active_per_run IS NOT NULL)),
		active AS MATERIALIZED (
			SELECT dag_id, task_id, run_pk, count(*) AS n FROM task_instances
			WHERE state IN ('running', 'deferred') AND (max_active_per_dag IS NOT NULL OR max_active_per_run IS NOT NULL)
				AND (dag_id, task_id) IN (SELECT dag_id, task_id FROM throttled)
			GROUP BY dag_id, task_id, run_pk),
		blocked AS MATERIALIZED (
			SELECT t.id FROM throttled t
			WHERE (t.max_active_per_dag IS NOT NULL AND t.dag_rank +
					coalesce((SELECT sum(a.n) FROM active a WHERE a.dag_id = t.dag_id AND a.task_id = t.task_id), 0) > t.max_active_per_dag)
				OR (t.max_active_per_run IS NOT NULL AND t.run_rank +
					coalesce((SELECT sum(a.n) FROM active a WHERE a.run_pk = t.run_pk AND a.task_id = t.task_id), 0) > t.max_active_per_run)),
		-- Read in the index's order: no join and no anti-join here (NOT
		-- IN a hashed list keeps the order), so the LIMIT stops the scan.
		-- The run's max_active_tasks is read after. Not locked: claims are
		-- serialised by the advisory lock, and the UPDATE below takes only
		-- those still queued.
		cand AS (
			SELECT ti.id, ti.pool, ti.dag_id, ti.priority_weight, ti.queued_at,
				ti.task_id, ti.run_pk, coalesce(ti.max_active_per_dag, 0) AS per_dag, coalesce(ti.max_active_per_run, 0) AS per_run
			FROM task_instances ti
			WHERE ti.state = 'queued' AND ti.id NOT IN (SELECT b.id FROM blocked b)
			ORDER BY ti.priority_weight DESC, ti.queued_at, ti.id
			LIMIT $1)
		SELECT id, pool, dag_id, (SELECT r.max_active_tasks FROM dag_runs r WHERE r.id = cand.run_pk), 0, 0,
			priority_weight, coalesce(queued_at, now()), task_id, run_pk, per_dag, per_run FROM cand
		UNION ALL
		SELECT 0, pool, dag_id, 0, 1, count(*)::int, 0, now(), '', 0, 0, 0 FROM task_instances WHERE state = 'running' GROUP BY pool, dag_id
		UNION ALL
		SELECT 0, '', dag_id, 0, 2, count(*)::int, 0, now(), task_id, run_pk, 0, 0 FROM task_instances
			WHERE state IN ('running', 'deferred') AND (max_active_per_dag IS NOT NULL OR max_active_per_run IS NOT NULL)
				AND (dag_id, task_id) IN (SELECT dag_id, task_id FROM cand WHERE per_dag > 0 OR per_run > 0)
				-- Checked once: no throttled candidate, no scan at all.
				AND EXISTS (SELECT 1 FROM cand WHERE per_dag > 0 OR per_run > 0)
			GROUP BY dag_id, task_id, run_pk`, n*2)
	if err != nil {
		return nil, fmt.Errorf("find queued tasks: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cand, error) {
		var c cand
		err := r.Scan(&c.id, &c.pool, &c.dagID, &c.maxActiveTasks, &c.kind, &c.count, &c.priority, &c.queuedAt,
			&c.taskID, &c.runPK, &c.perDag, &c.perRun)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("find queued tasks: %w", err)
	}
	poolUse := map[string]int{}
	dagUse := map[string]int{}
	type taskKey struct{ dagID, taskID string }
	type runTaskKey struct {
		runPK  int64
		taskID string
	}
	taskUse := map[taskKey]int{}
	runTaskUse := map[runTaskKey]int{}
	var cands []cand
	for _, c := range all {
		switch c.kind {
		case 1:
			poolUse[c.pool] += c.count
			dagUse[c.dagID] += c.count
		case 2:
			taskUse[taskKey{c.dagID, c.taskID}] += c.count
			runTaskUse[runTaskKey{c.runPK, c.taskID}] += c.count
		default:
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.priority != b.priority {
			return a.priority > b.priority
		}
		if !a.queuedAt.Equal(b.queuedAt) {
			return a.queuedAt.Before(b.queuedAt)
		}
		return a.id < b.id
	})
	var ids []int64
	for _, c := range cands {
		if len(ids) == n {
			break
		}
		slots, ok := lim.Pools[c.pool]
		if !ok {
			slots = lim.DefaultSlot
		}
		if poolUse[c.pool] >= slots || (c.maxActiveTasks > 0 && dagUse[c.dagID] >= c.maxActiveTasks) {
			continue
		}
		tk, rk := taskKey{c.dagID, c.taskID}, runTaskKey{c.runPK, c.taskID}
		if (c.perDag > 0 && taskUse[tk] >= c.perDag) || (c.perRun > 0 && runTaskUse[rk] >= c.perRun) {
			continue
		}
		poolUse[c.pool]++
		dagUse[c.dagID]++
		taskUse[tk]++
		runTaskUse[rk]++
		ids = append(ids, c.id)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// Only the chosen rows are locked, and only those still queued that no
	// other transaction holds (a clear or a mark may have moved or locked
	// one since the candidates were read): a row lock elsewhere is skipped,
	// not waited for while this claim holds the claim lock. The state is a
	// sub-select and the update finds its rows by an array of ids, so both
	// go by primary key: with a constant state, or a join, the planner may
	// walk the task_instances_queued index or scan the table instead.
	rows, err = q.db.Query(ctx, `WITH locked AS MATERIALIZED (
			SELECT id FROM task_instances WHERE id = ANY($1) AND state = (SELECT 'queued')
			FOR UPDATE SKIP LOCKED),
		claimed AS (
			UPDATE task_instances ti SET state = 'running', owner_id = $2,
				try_number = CASE WHEN ti.next_method IS NULL THEN ti.try_number + 1 ELSE ti.try_number END,
				started_at = CASE WHEN ti.next_method IS NULL THEN clock_timestamp() ELSE ti.started_at END,
				ended_at = NULL,
				`+appendHistory("'running'", "CASE WHEN ti.next_method IS NULL THEN ti.try_number + 1 ELSE ti.try_number END")+`
			WHERE ti.id = ANY(ARRAY(SELECT id FROM locked))
			RETURNING `+movedColumns+`)`+taskAlerts("claimed")+`
		SELECT `+tiColumns+`, r.dag_hash, r.logical_date, r.data_interval_start, r.data_interval_end, r.conf, r.asset_events
		FROM claimed ti JOIN dag_runs r ON r.id = ti.run_pk`, ids, owner)
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Claimed, error) {
		var c Claimed
		t := &c.TaskInstance
		err := r.Scan(&t.ID, &t.RunPK, &t.DagID, &t.RunID, &t.TaskID, &t.MapIndex, &t.State, &t.TryNumber, &t.MaxTries,
			&t.Pool, &t.Priority, &t.QueuedAt, &t.StartedAt, &t.EndedAt, &t.OwnerID, &t.NextMethod, &t.NextEvent,
			&t.ExternalNS, &t.ExternalName, &t.Error, &t.MappedArgs, &t.RenderedMapIndex, &c.Hash, &c.LogicalDate, &c.DataIntervalStart, &c.DataIntervalEnd, &c.Conf, &c.AssetEvents)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	// In the order chosen (priority first), which RETURNING does not keep.
	rank := make(map[int64]int, len(ids))
	for i, id := range ids {
		rank[id] = i
	}
	sort.Slice(claimed, func(i, j int) bool { return rank[claimed[i].ID] < rank[claimed[j].ID] })
	return claimed, nil
}
