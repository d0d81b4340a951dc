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
}

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
// priority order, within pool slots and each DAG's max_active_tasks. A
// task instance resuming after a deferral keeps its try number.
func (q Q) ClaimTasks(ctx context.Context, owner string, n int, lim Limits) ([]Claimed, error) {
	if _, err := q.db.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, claimLockKey); err != nil {
		return nil, fmt.Errorf("claim lock: %w", err)
	}
	type cand struct {
		id             int64
		pool, dagID    string
		maxActiveTasks int
		running        bool // a row of the running counts, not a candidate
		count          int
		priority       int
		queuedAt       time.Time
	}
	// One statement, after the lock: the candidates and what runs now.
	rows, err := q.db.Query(ctx, `WITH cand AS (
			SELECT ti.id, ti.pool, ti.dag_id, r.max_active_tasks, ti.priority_weight, ti.queued_at
			FROM task_instances ti JOIN dag_runs r ON r.id = ti.run_pk
			WHERE ti.state = 'queued'
			ORDER BY ti.priority_weight DESC, ti.queued_at, ti.id
			LIMIT $1 FOR UPDATE OF ti SKIP LOCKED)
		SELECT id, pool, dag_id, max_active_tasks, false, 0, priority_weight, coalesce(queued_at, now()) FROM cand
		UNION ALL
		SELECT 0, pool, dag_id, 0, true, count(*)::int, 0, now() FROM task_instances WHERE state = 'running' GROUP BY pool, dag_id`, n*2)
	if err != nil {
		return nil, fmt.Errorf("find queued tasks: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cand, error) {
		var c cand
		err := r.Scan(&c.id, &c.pool, &c.dagID, &c.maxActiveTasks, &c.running, &c.count, &c.priority, &c.queuedAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("find queued tasks: %w", err)
	}
	poolUse := map[string]int{}
	dagUse := map[string]int{}
	var cands []cand
	for _, c := range all {
		if c.running {
			poolUse[c.pool] += c.count
			dagUse[c.dagID] += c.count
		} else {
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
		poolUse[c.pool]++
		dagUse[c.dagID]++
		ids = append(ids, c.id)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err = q.db.Query(ctx, `WITH claimed AS (
			UPDATE task_instances ti SET state = 'running', owner_id = $2,
				try_number = CASE WHEN ti.next_method IS NULL THEN ti.try_number + 1 ELSE ti.try_number END,
				started_at = CASE WHEN ti.next_method IS NULL THEN clock_timestamp() ELSE ti.started_at END,
				ended_at = NULL,
				`+appendHistory("'running'", "CASE WHEN ti.next_method IS NULL THEN ti.try_number + 1 ELSE ti.try_number END")+`
			WHERE ti.id = ANY($1) AND ti.state = 'queued'
			RETURNING ti.*)`+taskAlerts("claimed")+`
		SELECT `+tiColumns+`, r.dag_hash, r.logical_date, r.data_interval_start, r.data_interval_end, r.conf
		FROM claimed ti JOIN dag_runs r ON r.id = ti.run_pk`, ids, owner)
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	claimed, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Claimed, error) {
		var c Claimed
		t := &c.TaskInstance
		err := r.Scan(&t.ID, &t.RunPK, &t.DagID, &t.RunID, &t.TaskID, &t.MapIndex, &t.State, &t.TryNumber, &t.MaxTries,
			&t.Pool, &t.Priority, &t.QueuedAt, &t.StartedAt, &t.EndedAt, &t.OwnerID, &t.NextMethod, &t.NextEvent,
			&t.ExternalNS, &t.ExternalName, &t.Error, &c.Hash, &c.LogicalDate, &c.DataIntervalStart, &c.DataIntervalEnd, &c.Conf)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	return claimed, nil
}
