package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/internal/runstate"
)

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
	// SkipTasks are task ids of the same run to move none → skipped with
	// a success (a branch's unchosen paths, a short-circuit's downstream).
	SkipTasks []string
	// AssetEvents are the task's outlets, recorded with a success.
	AssetEvents []NewAssetEvent
	// Identity of the task instance, for XCom rows.
	DagID, RunID, TaskID string
	MapIndex             int
}

// largeFinishBatch is the batch size from which FinishTasks plans without
// nested loops (below it, the n² plan costs less than two more statements).
const largeFinishBatch = 32

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
		switch o.State {
		case runstate.Success, runstate.Failed, runstate.Skipped, runstate.UpForRetry, runstate.Deferred:
		default:
			return nil, fmt.Errorf("finish task instance %d: %q is not a state a try ends in", o.ID, o.State)
		}
		ids[i], tries[i], owners[i], states[i], errs[i] = o.ID, int32(o.TryNumber), o.Owner, o.State, o.Error
		if o.State == runstate.UpForRetry {
			at := o.RetryAt
			retryAts[i] = &at
		}
		if o.Trigger != nil {
			methods[i] = o.Trigger.Method
		}
	}
	// The planner, trusting a statistic that says few rows are running
	// (stale while a burst of work starts), joined the outcomes as the
	// inner side of a nested loop: the unnest ran once per updated row, n²
	// work (1.6 s for a batch of 1,024). A large batch runs without nested
	// loops, a hash join linear in the batch; the setting is back on for
	// what follows in the transaction, the alerts of the moved rows first
	// (by id: index lookups, which a plan without nested loops would make
	// scans). A small batch (a chain's one task) keeps one statement.
	//
	// The guard's state is a sub-select so the rows are found by id (the
	// primary key), not through the partial index of running rows, which
	// after a burst holds thousands of dead entries until a vacuum.
	//
	// Sequential scans are off for the rest of the transaction (the
	// completer's, whose statements all find rows by index): a generic plan
	// cached while task_instances was small scans the table for the ids,
	// and stays cached as the table grows until an ANALYZE invalidates it
	// (1 ms per finished task at 20,000 rows, growing with the table). The
	// settings go in the same round trip as the statement.
	large := n >= largeFinishBatch
	settings := `SELECT set_config('enable_seqscan', 'off', true)`
	alerts := taskAlerts("upd")
	if large {
		settings = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_nestloop', 'off', true)`
		alerts = ""
	}
	b := &pgx.Batch{}
	b.Queue(settings)
	b.Queue(`WITH o AS (
			SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[])
				AS o(id, try, owner, state, error, retry_at, method)),
		upd AS (
			UPDATE task_instances ti SET state = o.state, error = nullif(o.error, ''), next_retry_at = o.retry_at,
				ended_at = CASE WHEN o.state = 'deferred' THEN NULL ELSE clock_timestamp() END,
				next_method = CASE WHEN o.state = 'deferred' THEN o.method ELSE NULL END,
				next_event = NULL,
				owner_id = CASE WHEN o.state = 'deferred' THEN NULL ELSE ti.owner_id END,
				`+appendHistory("o.state", "ti.try_number")+`
			FROM o WHERE ti.id = ANY($1) AND ti.id = o.id AND ti.state = (SELECT 'running') AND ti.try_number = o.try AND ti.owner_id = o.owner
			RETURNING `+movedColumns+`)`+alerts+`
		SELECT id FROM upd`, ids, tries, owners, states, errs, retryAts, methods)
	done, err := finishBatch(q.db.SendBatch(ctx, b))
	if err != nil {
		return nil, fmt.Errorf("finish task instances: %w", err)
	}
	if large {
		if _, err := q.db.Exec(ctx, `SET LOCAL enable_nestloop = on`); err != nil {
			return nil, fmt.Errorf("finish task instances: %w", err)
		}
		if len(done) > 0 {
			if _, err := q.db.Exec(ctx, `WITH upd AS (SELECT `+movedColumns+` FROM task_instances ti WHERE ti.id = ANY($1))`+
				taskAlerts("upd")+` SELECT 1`, done); err != nil {
				return nil, fmt.Errorf("alerts of finished task instances: %w", err)
			}
		}
	}
	applied := make(map[int64]bool, len(done))
	for _, id := range done {
		applied[id] = true
	}
	ok := make([]bool, n)
	var xcoms []xcomRow
	var produced []Outcome
	for i, o := range outs {
		ok[i] = applied[o.ID]
		if !ok[i] {
			continue
		}
		switch o.State {
		case runstate.Success:
			for key, v := range o.XCom {
				xcoms = append(xcoms, xcomRow{o.DagID, o.RunID, o.TaskID, o.MapIndex, key, v})
			}
			if _, err := q.SkipWithSuccess(ctx, o.ID, o.SkipTasks); err != nil {
				return nil, err
			}
			if len(o.AssetEvents) > 0 {
				produced = append(produced, o)
			}
		case runstate.Deferred:
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
	if err := q.pushXComs(ctx, xcoms); err != nil {
		return nil, err
	}
	if err := q.recordAssetEvents(ctx, produced); err != nil {
		return nil, err
	}
	return ok, nil
}

// finishBatch reads FinishTasks' batch: the settings, then the ids moved.
func finishBatch(br pgx.BatchResults) ([]int64, error) {
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	return done, br.Close()
}

// FinishTask records one try's outcome (see FinishTasks).
func (q Q) FinishTask(ctx context.Context, o Outcome) (bool, error) {
	ok, err := q.FinishTasks(ctx, []Outcome{o})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}
