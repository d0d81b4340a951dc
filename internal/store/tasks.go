package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/internal/runstate"
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
	// MappedArgs are a mapped instance's expanded options (a JSON object);
	// RenderedMapIndex its map_index_template rendering ("" when none).
	MappedArgs       []byte
	RenderedMapIndex string
}

const tiColumns = `ti.id, ti.run_pk, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.state, ti.try_number, ti.max_tries,
	ti.pool, ti.priority_weight, ti.queued_at, ti.started_at, ti.ended_at, coalesce(ti.owner_id, ''),
	coalesce(ti.next_method, ''), ti.next_event, coalesce(ti.external_ns, ''), coalesce(ti.external_name, ''),
	coalesce(ti.error, ''), ti.mapped_args, coalesce(ti.rendered_map_index, '')`

func scanTI(r pgx.CollectableRow) (TaskInstance, error) {
	var t TaskInstance
	err := r.Scan(&t.ID, &t.RunPK, &t.DagID, &t.RunID, &t.TaskID, &t.MapIndex, &t.State, &t.TryNumber, &t.MaxTries,
		&t.Pool, &t.Priority, &t.QueuedAt, &t.StartedAt, &t.EndedAt, &t.OwnerID, &t.NextMethod, &t.NextEvent,
		&t.ExternalNS, &t.ExternalName, &t.Error, &t.MappedArgs, &t.RenderedMapIndex)
	return t, err
}

// appendHistory is the SET clause that records a transition in the row's
// own history, in the statement that makes it: "state,try,unix-µs;"
// appended to transitions (see migration 0010 and parseTransitions).
func appendHistory(state, try string) string {
	return `transitions = transitions || ` + transition(state, try)
}

// transition is the SQL text expression of one history entry.
func transition(state, try string) string {
	return `(` + state + `) || ',' || (` + try + `) || ',' || ` + nowMicros + ` || ';'`
}

// nowMicros is the SQL expression for clock_timestamp() in µs since the epoch.
const nowMicros = `(extract(epoch FROM clock_timestamp()) * 1000000)::bigint`

// TaskSpec is what a new task instance takes from its task.
type TaskSpec struct {
	TaskID   string
	MaxTries int
	Pool     string
	Priority int
	// Queued creates it queued (a task with nothing to wait for), saving
	// the write that would queue it a moment later.
	Queued bool
	// MaxActivePerDag and MaxActivePerRun are the task's
	// max_active_tis_per_dag and max_active_tis_per_dagrun (0: none).
	MaxActivePerDag, MaxActivePerRun int
}

// InsertTaskInstances creates a run's task instances in state none.
func (q Q) InsertTaskInstances(ctx context.Context, run Run, specs []TaskSpec) error {
	ids := make([]string, len(specs))
	tries := make([]int32, len(specs))
	pools := make([]string, len(specs))
	prios := make([]int32, len(specs))
	queued := make([]bool, len(specs))
	perDag, perRun := make([]int32, len(specs)), make([]int32, len(specs))
	anyQueued := false
	for i, s := range specs {
		ids[i], tries[i], pools[i], prios[i], queued[i] = s.TaskID, int32(s.MaxTries), s.Pool, int32(s.Priority), s.Queued
		perDag[i], perRun[i] = int32(s.MaxActivePerDag), int32(s.MaxActivePerRun)
		anyQueued = anyQueued || s.Queued
	}
	_, err := q.db.Exec(ctx, `INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, max_tries, pool, priority_weight,
			state, queued_at, transitions, max_active_per_dag, max_active_per_run)
		SELECT $1, $2, $3, t, m, p, w,
			CASE WHEN qd THEN 'queued' ELSE 'none' END,
			CASE WHEN qd THEN clock_timestamp() END,
			CASE WHEN qd THEN `+transition("'queued'", "0")+` ELSE '' END,
			nullif(pd, 0), nullif(pr, 0)
		FROM unnest($4::text[], $5::int[], $6::text[], $7::int[], $8::bool[], $9::int[], $10::int[]) AS u(t, m, p, w, qd, pd, pr)
		ON CONFLICT (run_pk, task_id, map_index) DO NOTHING`,
		run.PK, run.DagID, run.RunID, ids, tries, pools, prios, queued, perDag, perRun)
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
	rows, err := q.db.Query(ctx, `SELECT `+tiColumns+` FROM task_instances ti WHERE ti.run_pk = $1
		ORDER BY min(ti.id) OVER (PARTITION BY ti.task_id), ti.map_index`, runPK)
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

// QueueReady moves a run's ready task instances none → queued and wakes the
// workers at commit; it returns the ids that moved.
func (q Q) QueueReady(ctx context.Context, runPK int64, taskIDs []string) ([]int64, error) {
	if len(taskIDs) == 0 {
		return nil, nil
	}
	rows, err := q.db.Query(ctx, `UPDATE task_instances SET state = 'queued', queued_at = clock_timestamp(),
			`+appendHistory("'queued'", "try_number")+`
		WHERE run_pk = $1 AND task_id = ANY($2) AND state = 'none' RETURNING id`, runPK, taskIDs)
	if err != nil {
		return nil, fmt.Errorf("queue %v of run %d: %w", taskIDs, runPK, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return ids, q.Notify(ctx, ChannelTaskQueued, "")
}

// MarkUpstreamFailed moves task instances none → upstream_failed (their
// trigger rule can no longer be met because an upstream failed); it returns
// the ids that moved.
func (q Q) MarkUpstreamFailed(ctx context.Context, runPK int64, taskIDs []string) ([]int64, error) {
	return q.endWaiting(ctx, runPK, taskIDs, runstate.UpstreamFailed)
}

// MarkSkipped moves task instances none → skipped (their trigger rule says
// so); it returns the ids that moved.
func (q Q) MarkSkipped(ctx context.Context, runPK int64, taskIDs []string) ([]int64, error) {
	return q.endWaiting(ctx, runPK, taskIDs, runstate.Skipped)
}

// endWaiting is MarkUpstreamFailed and MarkSkipped: none → a final state
// that no try reached.
func (q Q) endWaiting(ctx context.Context, runPK int64, taskIDs []string, state string) ([]int64, error) {
	if len(taskIDs) == 0 {
		return nil, nil
	}
	rows, err := q.db.Query(ctx, `WITH moved AS (UPDATE task_instances SET state = $3, ended_at = clock_timestamp(),
			`+appendHistory("$3::text", "try_number")+`
		WHERE run_pk = $1 AND task_id = ANY($2) AND state = 'none' RETURNING *)`+taskAlerts("moved")+`
		SELECT id FROM moved`, runPK, taskIDs, state)
	if err != nil {
		return nil, fmt.Errorf("mark %v of run %d %s: %w", taskIDs, runPK, state, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// SkipWithSuccess moves task instances of the run of task instance tiID
// none → skipped: what a branch or short-circuit decides, written by
// FinishTasks in the transaction of its success. It returns the ids that
// moved.
func (q Q) SkipWithSuccess(ctx context.Context, tiID int64, taskIDs []string) ([]int64, error) {
	if len(taskIDs) == 0 {
		return nil, nil
	}
	rows, err := q.db.Query(ctx, `UPDATE task_instances SET state = 'skipped', ended_at = clock_timestamp(),
			`+appendHistory("'skipped'", "try_number")+`
		WHERE run_pk = (SELECT run_pk FROM task_instances WHERE id = $1) AND task_id = ANY($2) AND state = 'none'
		RETURNING id`, tiID, taskIDs)
	if err != nil {
		return nil, fmt.Errorf("skip %v after task instance %d: %w", taskIDs, tiID, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
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

// QueueResumed moves task instances left scheduled to queued and wakes the
// workers at commit; it returns how many moved. FireTrigger queues a resumed
// task itself; this is the safety net for rows that an older podflow (whose
// FireTrigger stopped at scheduled) left behind.
func (q Q) QueueResumed(ctx context.Context) (int, error) {
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

// ClearMapIndex resets one mapped instance of a task (see ClearTasks).
func (q Q) ClearMapIndex(ctx context.Context, run Run, taskID string, mapIndex int) (int, error) {
	rows, err := q.db.Query(ctx, `UPDATE task_instances SET state = 'none', next_retry_at = NULL, next_method = NULL,
			next_event = NULL, owner_id = NULL, error = NULL, queued_at = NULL, started_at = NULL, ended_at = NULL,
			max_tries = max_tries + try_number,
			`+appendHistory("'none'", "try_number")+`
		WHERE run_pk = $1 AND task_id = $2 AND map_index = $3 RETURNING id`, run.PK, taskID, mapIndex)
	if err != nil {
		return 0, fmt.Errorf("clear task %s map index %d: %w", taskID, mapIndex, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4`,
		run.DagID, run.RunID, taskID, mapIndex); err != nil {
		return 0, fmt.Errorf("clear xcoms of %s map index %d: %w", taskID, mapIndex, err)
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM triggers WHERE ti_id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("clear triggers: %w", err)
	}
	return len(ids), q.Notify(ctx, ChannelTaskStopped, "")
}

// ClearTasks resets task instances of a run to none (so they run again) and
// deletes their XComs. Running ones are stopped by their workers, which
// ChannelTaskStopped tells at commit.
func (q Q) ClearTasks(ctx context.Context, run Run, taskIDs []string) (int, error) {
	rows, err := q.db.Query(ctx, `UPDATE task_instances SET state = 'none', next_retry_at = NULL, next_method = NULL,
			next_event = NULL, owner_id = NULL, error = NULL, queued_at = NULL, started_at = NULL, ended_at = NULL,
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
	if err := q.clearXComs(ctx, run.DagID, run.RunID, taskIDs); err != nil {
		return 0, err
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM triggers WHERE ti_id = ANY($1)`, ids); err != nil {
		return 0, fmt.Errorf("clear triggers: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return len(ids), q.Notify(ctx, ChannelTaskStopped, "")
}

// StateHistory lists the states a task instance went through: the jsonb
// history of a row written before migration 0010, then its transitions.
func (q Q) StateHistory(ctx context.Context, tiID int64) ([]StateChange, error) {
	var old []StateChange
	var compact string
	err := q.db.QueryRow(ctx, `SELECT coalesce((SELECT jsonb_agg(jsonb_build_object('TryNumber', (h->>'try')::int,
				'State', h->>'state', 'At', (h->>'at')::timestamptz) ORDER BY n)
			FROM jsonb_array_elements(history) WITH ORDINALITY AS x(h, n)), '[]'), transitions
		FROM task_instances WHERE id = $1`, tiID).Scan(&old, &compact)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state history of task instance %d: %w", tiID, err)
	}
	changes, err := parseTransitions(compact)
	if err != nil {
		return nil, fmt.Errorf("state history of task instance %d: %w", tiID, err)
	}
	return append(old, changes...), nil
}

// parseTransitions reads the compact history: "state,try,unix-µs;" per
// transition.
func parseTransitions(s string) ([]StateChange, error) {
	var out []StateChange
	for _, e := range strings.Split(s, ";") {
		if e == "" {
			continue
		}
		f := strings.Split(e, ",")
		if len(f) != 3 || f[0] == "" {
			return nil, fmt.Errorf("transition %q: want state,try,unix-µs", e)
		}
		try, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("transition %q: try: %w", e, err)
		}
		us, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("transition %q: time: %w", e, err)
		}
		out = append(out, StateChange{TryNumber: try, State: f[0], At: time.UnixMicro(us)})
	}
	return out, nil
}

// StateChange is one entry of a task instance's state history.
type StateChange struct {
	TryNumber int
	State     string
	At        time.Time
}

// TaskStates maps a run's task ids to their states. A mapped task's
// instances are summed up in one state for the trigger rules: none while
// any instance waits to be queued (a placeholder, a cleared instance), a
// running state while any is unfinished, then failed, upstream_failed,
// skipped when all are, else success.
func (q Q) TaskStates(ctx context.Context, runPK int64) (map[string]string, error) {
	rows, err := q.db.Query(ctx, `SELECT task_id, CASE
			WHEN count(*) = 1 THEN min(state)
			WHEN bool_or(state = 'none') THEN 'none'
			WHEN bool_or(state NOT IN ('success', 'failed', 'upstream_failed', 'skipped')) THEN 'running'
			WHEN bool_or(state = 'failed') THEN 'failed'
			WHEN bool_or(state = 'upstream_failed') THEN 'upstream_failed'
			WHEN bool_and(state = 'skipped') THEN 'skipped'
			ELSE 'success' END
		FROM task_instances WHERE run_pk = $1 GROUP BY task_id`, runPK)
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

// TaskInstanceAt returns one task instance of a run by task and map index.
func (q Q) TaskInstanceAt(ctx context.Context, runPK int64, taskID string, mapIndex int) (TaskInstance, error) {
	rows, err := q.db.Query(ctx, `SELECT `+tiColumns+` FROM task_instances ti WHERE ti.run_pk = $1 AND ti.task_id = $2 AND ti.map_index = $3`, runPK, taskID, mapIndex)
	if err != nil {
		return TaskInstance{}, fmt.Errorf("read task %s: %w", taskID, err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanTI)
	if errors.Is(err, pgx.ErrNoRows) {
		return TaskInstance{}, fmt.Errorf("task %s (map index %d): %w", taskID, mapIndex, ErrNotFound)
	}
	return t, err
}

// ListTaskInstances returns a page of a run's task instances (states nil =
// all) and how many match.
func (q Q) ListTaskInstances(ctx context.Context, runPK int64, states []string, limit, offset int) ([]TaskInstance, int, error) {
	if states == nil {
		states = []string{}
	}
	const where = ` WHERE ti.run_pk = $1 AND (cardinality($2::text[]) = 0 OR ti.state = ANY($2))`
	var total int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM task_instances ti`+where, runPK, states).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count task instances of run %d: %w", runPK, err)
	}
	rows, err := q.db.Query(ctx, `SELECT `+tiColumns+` FROM task_instances ti`+where+` ORDER BY ti.id LIMIT $3 OFFSET $4`, runPK, states, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list task instances of run %d: %w", runPK, err)
	}
	out, err := pgx.CollectRows(rows, scanTI)
	return out, total, err
}

// MarkTaskInstance sets a task instance's state by hand (success, failed or
// skipped). A running one is stopped by its scheduler at its next check; the
// scheduler's sweep then decides what runs next. changed is false when it
// was in that state already.
func (q Q) MarkTaskInstance(ctx context.Context, id int64, state string) (changed bool, err error) {
	switch state {
	case runstate.Success, runstate.Failed, runstate.Skipped:
	default:
		return false, fmt.Errorf("%w: mark task instance: state %q is not success, failed or skipped", ErrBadInput, state)
	}
	tag, err := q.db.Exec(ctx, `UPDATE task_instances SET state = $2, ended_at = clock_timestamp(), next_retry_at = NULL,
			`+appendHistory("$2::text", "try_number")+`
		WHERE id = $1 AND state <> $2`, id, state)
	if err != nil {
		return false, fmt.Errorf("mark task instance %d %s: %w", id, state, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	return true, q.Notify(ctx, ChannelSchedulerWake, "")
}

// NewInstance is one mapped instance to create: its expanded options (a
// JSON object) and its map_index_template rendering.
type NewInstance struct {
	Args      []byte
	IndexName string
}

// ExpandTask turns a mapped task's placeholder (map_index -1, state none)
// into instances 0…n-1, all queued, in one statement: the placeholder
// becomes instance 0 and the others copy its settings. It reports whether
// the placeholder was still there to expand (a second scheduler expanding
// the same task changes nothing).
func (q Q) ExpandTask(ctx context.Context, runPK int64, taskID string, insts []NewInstance) (bool, error) {
	if len(insts) == 0 {
		return false, fmt.Errorf("expand task %s: no instances (skip it instead)", taskID)
	}
	args, names := make([]string, len(insts)), make([]string, len(insts))
	for i, in := range insts {
		args[i], names[i] = string(in.Args), in.IndexName
	}
	var placeholder, inserted int
	err := q.db.QueryRow(ctx, `WITH ph AS (
			UPDATE task_instances SET map_index = 0, state = 'queued', queued_at = clock_timestamp(),
				mapped_args = ($3::jsonb[])[1], rendered_map_index = nullif(($4::text[])[1], ''),
				`+appendHistory("'queued'", "try_number")+`
			WHERE run_pk = $1 AND task_id = $2 AND map_index = -1 AND state = 'none'
			RETURNING *),
		ins AS (
			INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, map_index, max_tries, pool, priority_weight,
				state, queued_at, transitions, mapped_args, rendered_map_index, max_active_per_dag, max_active_per_run)
			SELECT ph.run_pk, ph.dag_id, ph.run_id, ph.task_id, (u.n - 1)::int, ph.max_tries, ph.pool, ph.priority_weight,
				'queued', clock_timestamp(),
				`+transition("'queued'", "0")+`,
				u.a, nullif(u.name, ''), ph.max_active_per_dag, ph.max_active_per_run
			FROM ph, unnest($3::jsonb[], $4::text[]) WITH ORDINALITY AS u(a, name, n)
			WHERE u.n > 1
			RETURNING 1)
		SELECT (SELECT count(*) FROM ph)::int, (SELECT count(*) FROM ins)::int`, runPK, taskID, args, names).Scan(&placeholder, &inserted)
	if err != nil {
		return false, fmt.Errorf("expand task %s of run %d into %d instances: %w", taskID, runPK, len(insts), err)
	}
	if placeholder == 0 {
		return false, nil
	}
	return true, q.Notify(ctx, ChannelTaskQueued, "")
}

// FailUnexpanded fails a mapped task's placeholder (none → failed) whose
// list could not be had: a template that renders no list, more items than
// max_map_length. It reports whether it applied.
func (q Q) FailUnexpanded(ctx context.Context, runPK int64, taskID, reason string) (bool, error) {
	tag, err := q.db.Exec(ctx, `UPDATE task_instances SET state = 'failed', error = $3, ended_at = clock_timestamp(),
			`+appendHistory("'failed'", "try_number")+`
		WHERE run_pk = $1 AND task_id = $2 AND map_index = -1 AND state = 'none'`, runPK, taskID, reason)
	if err != nil {
		return false, fmt.Errorf("fail mapped task %s of run %d: %w", taskID, runPK, err)
	}
	return tag.RowsAffected() > 0, nil
}

// HasPlaceholder reports whether a mapped task still waits to be expanded
// in the run (its map_index -1 row is in state none).
func (q Q) HasPlaceholder(ctx context.Context, runPK int64, taskID string) (bool, error) {
	var ok bool
	err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM task_instances WHERE run_pk = $1 AND task_id = $2 AND map_index = -1 AND state = 'none')`,
		runPK, taskID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("read placeholder of %s: %w", taskID, err)
	}
	return ok, nil
}
