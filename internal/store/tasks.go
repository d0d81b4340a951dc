package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// TaskInstance is one task of one run.
type TaskInstance struct {
	ID           int64
	RunPK        int64
	DagID        string
	RunID        string
	TaskID       string
	MapIndex     int
	State        string
	TryNumber    int
	MaxTries     int
	Pool         string
	Priority     int
	QueuedAt     *time.Time
	StartedAt    *time.Time
	EndedAt      *time.Time
	OwnerID      string
	NextMethod   string
	NextEvent    []byte
	ExternalNS   string
	ExternalName string
	Error        string
}

const tiColumns = `ti.id, ti.run_pk, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.state, ti.try_number, ti.max_tries,
	ti.pool, ti.priority_weight, ti.queued_at, ti.started_at, ti.ended_at, coalesce(ti.owner_id, ''),
	coalesce(ti.next_method, ''), ti.next_event, coalesce(ti.external_ns, ''), coalesce(ti.external_name, ''),
	coalesce(ti.error, '')`

func scanTI(r pgx.CollectableRow) (TaskInstance, error) {
	var t TaskInstance
	err := r.Scan(&t.ID, &t.RunPK, &t.DagID, &t.RunID, &t.TaskID, &t.MapIndex, &t.State, &t.TryNumber, &t.MaxTries,
		&t.Pool, &t.Priority, &t.QueuedAt, &t.StartedAt, &t.EndedAt, &t.OwnerID, &t.NextMethod, &t.NextEvent,
		&t.ExternalNS, &t.ExternalName, &t.Error)
	return t, err
}

// appendHistory is the SET clause that records a transition in the row's
// own history, in the statement that makes it.
func appendHistory(state, try string) string {
	return `history = history || jsonb_build_array(jsonb_build_object('state', ` + state + `, 'try', ` + try + `, 'at', clock_timestamp()))`
}

// TaskSpec is what a new task instance takes from its task.
type TaskSpec struct {
	TaskID   string
	MaxTries int
	Pool     string
	Priority int
	// Queued creates it queued (a task with nothing to wait for), saving
	// the write that would queue it a moment later.
	Queued bool
}

// InsertTaskInstances creates a run's task instances in state none.
func (q Q) InsertTaskInstances(ctx context.Context, run Run, specs []TaskSpec) error {
	ids := make([]string, len(specs))
	tries := make([]int32, len(specs))
	pools := make([]string, len(specs))
	prios := make([]int32, len(specs))
	queued := make([]bool, len(specs))
	anyQueued := false
	for i, s := range specs {
		ids[i], tries[i], pools[i], prios[i], queued[i] = s.TaskID, int32(s.MaxTries), s.Pool, int32(s.Priority), s.Queued
		anyQueued = anyQueued || s.Queued
	}
	_, err := q.db.Exec(ctx, `INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, max_tries, pool, priority_weight,
			state, queued_at, history)
		SELECT $1, $2, $3, t, m, p, w,
			CASE WHEN qd THEN 'queued' ELSE 'none' END,
			CASE WHEN qd THEN clock_timestamp() END,
			CASE WHEN qd THEN jsonb_build_array(jsonb_build_object('state', 'queued', 'try', 0, 'at', clock_timestamp())) ELSE '[]' END
		FROM unnest($4::text[], $5::int[], $6::text[], $7::int[], $8::bool[]) AS u(t, m, p, w, qd)
		ON CONFLICT (run_pk, task_id, map_index) DO NOTHING`,
		run.PK, run.DagID, run.RunID, ids, tries, pools, prios, queued)
	if err != nil {
		return fmt.Errorf("create task instances of %s/%s: %w", run.DagID, run.RunID, err)
	}
	if anyQueued {
		return q.Notify(ctx, ChannelTaskQueued, "")
	}
	return nil
}

// TaskInstances lists a run's task instances.
func (q Q) TaskInstances(ctx context.Context, runPK int64) ([]TaskInstance, error) {
	rows, err := q.db.Query(ctx, `SELECT `+tiColumns+` FROM task_instances ti WHERE ti.run_pk = $1 ORDER BY ti.id`, runPK)
	if err != nil {
		return nil, fmt.Errorf("list task instances of run %d: %w", runPK, err)
	}
	return pgx.CollectRows(rows, scanTI)
}

// TaskInstance returns one task instance of a run.
func (q Q) TaskInstance(ctx context.Context, runPK int64, taskID string) (TaskInstance, error) {
	rows, err := q.db.Query(ctx, `SELECT `+tiColumns+` FROM task_instances ti WHERE ti.run_pk = $1 AND ti.task_id = $2 AND ti.map_index = -1`, runPK, taskID)
	if err != nil {
		return TaskInstance{}, err
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanTI)
	if errors.Is(err, pgx.ErrNoRows) {
		return TaskInstance{}, fmt.Errorf("task %s: %w", taskID, ErrNotFound)
	}
	return t, err
}

// TaskInstanceByID returns one task instance.
func (q Q) TaskInstanceByID(ctx context.Context, id int64) (TaskInstance, error) {
	rows, err := q.db.Query(ctx, `SELECT `+tiColumns+` FROM task_instances ti WHERE ti.id = $1`, id)
	if err != nil {
		return TaskInstance{}, err
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanTI)
	if errors.Is(err, pgx.ErrNoRows) {
		return TaskInstance{}, fmt.Errorf("task instance %d: %w", id, ErrNotFound)
	}
	return t, err
}

// SetStates moves task instances of a run by task id from state "from" to
// "to"; it returns the ids that moved. Moving to queued stamps queued_at and
// notifies the workers (at commit).
func (q Q) SetStates(ctx context.Context, runPK int64, taskIDs []string, from []string, to string) ([]int64, error) {
	if len(taskIDs) == 0 {
		return nil, nil
	}
	rows, err := q.db.Query(ctx, `UPDATE task_instances SET state = $4,
			queued_at = CASE WHEN $4 = 'queued' THEN clock_timestamp() ELSE queued_at END,
			ended_at = CASE WHEN $4 IN ('skipped', 'upstream_failed') THEN clock_timestamp() ELSE ended_at END,
			`+appendHistory("$4::text", "try_number")+`
		WHERE run_pk = $1 AND task_id = ANY($2) AND state = ANY($3) RETURNING id`, runPK, taskIDs, from, to)
	if err != nil {
		return nil, fmt.Errorf("set %v to %s: %w", taskIDs, to, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	if to == "queued" && len(ids) > 0 {
		return ids, q.Notify(ctx, ChannelTaskQueued, "")
	}
	return ids, nil
}

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
			RETURNING ti.*)
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

// Outcome is how a claimed task instance's try ended.
type Outcome struct {
	ID        int64
	TryNumber int
	Owner     string
	State     string // success | failed | skipped | up_for_retry | deferred
	Error     string
	// RetryAt is when an up_for_retry task is queued again.
	RetryAt time.Time
	// XCom values (JSON) to store with a success, by key.
	XCom map[string]json.RawMessage
	// Trigger to store with a deferral.
	Trigger *NewTrigger
	// Identity of the task instance, for XCom rows.
	DagID, RunID, TaskID string
	MapIndex             int
}

// FinishTasks records tries' outcomes in one statement, each guarded by
// state running, its try number and its owner, so a zombie's late report
// changes nothing. XComs (on success) and triggers (on deferral) of the
// outcomes that applied are written too; call it inside a transaction. It
// returns which outcomes applied.
func (q Q) FinishTasks(ctx context.Context, outs []Outcome) ([]bool, error) {
	if len(outs) == 0 {
		return nil, nil
	}
	n := len(outs)
	ids, tries := make([]int64, n), make([]int32, n)
	owners, states, errs, methods := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	retryAts := make([]*time.Time, n)
	for i, o := range outs {
		ids[i], tries[i], owners[i], states[i], errs[i] = o.ID, int32(o.TryNumber), o.Owner, o.State, o.Error
		if o.State == "up_for_retry" {
			at := o.RetryAt
			retryAts[i] = &at
		}
		if o.Trigger != nil {
			methods[i] = o.Trigger.Method
		}
	}
	rows, err := q.db.Query(ctx, `WITH o AS (
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[])
				AS o(id, try, owner, state, error, retry_at, method)),
		upd AS (
			UPDATE task_instances ti SET state = o.state, error = nullif(o.error, ''), next_retry_at = o.retry_at,
				ended_at = CASE WHEN o.state = 'deferred' THEN NULL ELSE clock_timestamp() END,
				next_method = CASE WHEN o.state = 'deferred' THEN o.method ELSE NULL END,
				next_event = NULL,
				owner_id = CASE WHEN o.state = 'deferred' THEN NULL ELSE ti.owner_id END,
				`+appendHistory("o.state", "ti.try_number")+`
			FROM o WHERE ti.id = ANY($1) AND ti.id = o.id AND ti.state = 'running' AND ti.try_number = o.try AND ti.owner_id = o.owner
			RETURNING ti.id)
		SELECT id FROM upd`, ids, tries, owners, states, errs, retryAts, methods)
	if err != nil {
		return nil, fmt.Errorf("finish task instances: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("finish task instances: %w", err)
	}
	applied := make(map[int64]bool, len(done))
	for _, id := range done {
		applied[id] = true
	}
	ok := make([]bool, n)
	var xDag, xRun, xTask, xKey []string
	var xMap []int32
	var xVal [][]byte
	for i, o := range outs {
		ok[i] = applied[o.ID]
		if !ok[i] {
			continue
		}
		switch o.State {
		case "success":
			for key, v := range o.XCom {
				xDag, xRun, xTask, xKey = append(xDag, o.DagID), append(xRun, o.RunID), append(xTask, o.TaskID), append(xKey, key)
				xMap, xVal = append(xMap, int32(o.MapIndex)), append(xVal, []byte(v))
			}
		case "deferred":
			if o.Trigger == nil {
				return nil, fmt.Errorf("finish task instance %d: deferred without a trigger", o.ID)
			}
			t := *o.Trigger
			t.TaskInstanceID = o.ID
			if _, err := q.CreateTrigger(ctx, t); err != nil {
				return nil, err
			}
		}
	}
	if len(xDag) > 0 {
		_, err := q.db.Exec(ctx, `INSERT INTO xcom (dag_id, run_id, task_id, map_index, key, value)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::jsonb[])
			ON CONFLICT (dag_id, run_id, task_id, map_index, key) DO UPDATE SET value = excluded.value, created_at = now()`,
			xDag, xRun, xTask, xMap, xKey, xVal)
		if err != nil {
			return nil, fmt.Errorf("push xcoms: %w", err)
		}
	}
	return ok, nil
}

// FinishTask records one try's outcome (see FinishTasks).
func (q Q) FinishTask(ctx context.Context, o Outcome) (bool, error) {
	ok, err := q.FinishTasks(ctx, []Outcome{o})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

func triggerMethod(t *NewTrigger) *string {
	if t == nil {
		return nil
	}
	return &t.Method
}

// QueueDueRetries moves up_for_retry task instances whose delay has passed to
// queued; it returns how many moved.
func (q Q) QueueDueRetries(ctx context.Context) (int, error) {
	rows, err := q.db.Query(ctx, `UPDATE task_instances SET state = 'queued', queued_at = clock_timestamp(),
			`+appendHistory("'queued'", "try_number")+`
		WHERE state = 'up_for_retry' AND next_retry_at <= now() RETURNING id`)
	if err != nil {
		return 0, fmt.Errorf("queue retries: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return len(ids), q.Notify(ctx, ChannelTaskQueued, "")
}

// QueueScheduled moves resumed (scheduled) task instances to queued.
func (q Q) QueueScheduled(ctx context.Context) (int, error) {
	rows, err := q.db.Query(ctx, `UPDATE task_instances SET state = 'queued', queued_at = clock_timestamp(),
			`+appendHistory("'queued'", "try_number")+`
		WHERE state = 'scheduled' RETURNING id`)
	if err != nil {
		return 0, fmt.Errorf("queue scheduled tasks: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return len(ids), q.Notify(ctx, ChannelTaskQueued, "")
}

// Zombie is a running task instance whose owner stopped heartbeating.
type Zombie struct {
	ID        int64
	RunPK     int64
	TryNumber int
	MaxTries  int
	Owner     string
}

// Zombies lists running task instances whose owner's heartbeat is older than
// threshold or gone.
func (q Q) Zombies(ctx context.Context, threshold time.Duration) ([]Zombie, error) {
	rows, err := q.db.Query(ctx, `SELECT ti.id, ti.run_pk, ti.try_number, ti.max_tries, coalesce(ti.owner_id, '')
		FROM task_instances ti LEFT JOIN heartbeats h ON h.id = ti.owner_id
		WHERE ti.state = 'running' AND (h.id IS NULL OR h.heartbeat_at < now() - $1::interval)`, threshold.String())
	if err != nil {
		return nil, fmt.Errorf("find zombies: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Zombie, error) {
		var z Zombie
		err := r.Scan(&z.ID, &z.RunPK, &z.TryNumber, &z.MaxTries, &z.Owner)
		return z, err
	})
}

// NotRunningAnyMore returns which of ids are no longer running for owner (cleared,
// failed by someone else, or taken over): their workers should stop them.
func (q Q) NotRunningAnyMore(ctx context.Context, owner string, ids []int64) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := q.db.Query(ctx, `SELECT id FROM unnest($1::bigint[]) AS u(id)
		WHERE NOT EXISTS (SELECT 1 FROM task_instances ti WHERE ti.id = u.id AND ti.state = 'running' AND ti.owner_id = $2)`, ids, owner)
	if err != nil {
		return nil, fmt.Errorf("check running tasks: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// SetExternalID records an operator's handle (e.g. its pod) on the task
// instance.
func (q Q) SetExternalID(ctx context.Context, id int64, namespace, name string) error {
	_, err := q.db.Exec(ctx, `UPDATE task_instances SET external_ns = $2, external_name = $3 WHERE id = $1`, id, namespace, name)
	if err != nil {
		return fmt.Errorf("record external id of task instance %d: %w", id, err)
	}
	return nil
}

// ClearTasks resets task instances of a run to none (so they run again) and
// deletes their XComs. Running ones are left to their workers to notice.
func (q Q) ClearTasks(ctx context.Context, run Run, taskIDs []string) (int, error) {
	rows, err := q.db.Query(ctx, `UPDATE task_instances SET state = 'none', next_retry_at = NULL, next_method = NULL,
			next_event = NULL, owner_id = NULL, error = NULL, queued_at = NULL, ended_at = NULL,
			max_tries = max_tries + try_number,
			`+appendHistory("'none'", "try_number")+`
		WHERE run_pk = $1 AND task_id = ANY($2) RETURNING id`, run.PK, taskIDs)
	if err != nil {
		return 0, fmt.Errorf("clear tasks: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, err
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = ANY($3)`, run.DagID, run.RunID, taskIDs); err != nil {
		return 0, fmt.Errorf("clear xcoms: %w", err)
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM triggers WHERE ti_id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("clear triggers: %w", err)
	}
	return len(ids), nil
}

// StateHistory lists the states a task instance went through.
func (q Q) StateHistory(ctx context.Context, tiID int64) ([]StateChange, error) {
	rows, err := q.db.Query(ctx, `SELECT (h->>'try')::int, h->>'state', (h->>'at')::timestamptz
		FROM task_instances, jsonb_array_elements(history) WITH ORDINALITY AS x(h, n) WHERE id = $1 ORDER BY n`, tiID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (StateChange, error) {
		var s StateChange
		err := r.Scan(&s.TryNumber, &s.State, &s.At)
		return s, err
	})
}

// StateChange is one entry of a task instance's state history.
type StateChange struct {
	TryNumber int
	State     string
	At        time.Time
}

// TaskStates maps a run's task ids to their states.
func (q Q) TaskStates(ctx context.Context, runPK int64) (map[string]string, error) {
	rows, err := q.db.Query(ctx, `SELECT task_id, state FROM task_instances WHERE run_pk = $1`, runPK)
	if err != nil {
		return nil, fmt.Errorf("read task states of run %d: %w", runPK, err)
	}
	defer rows.Close()
	states := map[string]string{}
	for rows.Next() {
		var id, state string
		if err := rows.Scan(&id, &state); err != nil {
			return nil, err
		}
		states[id] = state
	}
	return states, rows.Err()
}
