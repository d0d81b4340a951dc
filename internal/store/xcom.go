package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// xcomRow is one XCom value with its key: (dag_id, run_id, task_id,
// map_index, key) → jsonb. Values are written only with their task's
// success (FinishTasks) and deleted when the task is cleared (ClearTasks) or
// its run is deleted (DeleteFinishedRunsBefore).
type xcomRow struct {
	DagID, RunID, TaskID string
	MapIndex             int
	Key                  string
	Value                json.RawMessage
}

// pushXComs stores values in one statement, replacing a value already under
// the same key (a retried task that pushed before).
func (q Q) pushXComs(ctx context.Context, xs []xcomRow) error {
	if len(xs) == 0 {
		return nil
	}
	dags, runs, tasks, keys := make([]string, len(xs)), make([]string, len(xs)), make([]string, len(xs)), make([]string, len(xs))
	maps, values := make([]int32, len(xs)), make([][]byte, len(xs))
	for i, x := range xs {
		dags[i], runs[i], tasks[i], maps[i], keys[i], values[i] = x.DagID, x.RunID, x.TaskID, int32(x.MapIndex), x.Key, []byte(x.Value)
	}
	_, err := q.db.Exec(ctx, `INSERT INTO xcom (dag_id, run_id, task_id, map_index, key, value)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::jsonb[])
		ON CONFLICT (dag_id, run_id, task_id, map_index, key) DO UPDATE SET value = excluded.value, created_at = now()`,
		dags, runs, tasks, maps, keys, values)
	if err != nil {
		return fmt.Errorf("push xcoms: %w", err)
	}
	return nil
}

// XCom reads the value an unmapped task pushed under key in a run; found is
// false when there is none.
func (q Q) XCom(ctx context.Context, dagID, runID, taskID, key string) (value json.RawMessage, found bool, err error) {
	var b []byte
	err = q.db.QueryRow(ctx, `SELECT value FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = -1 AND key = $4`,
		dagID, runID, taskID, key).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read xcom %s/%s/%s %q: %w", dagID, runID, taskID, key, err)
	}
	return b, true, nil
}

// XComKeys lists the keys an unmapped task pushed in a run.
func (q Q) XComKeys(ctx context.Context, dagID, runID, taskID string) ([]string, error) {
	rows, err := q.db.Query(ctx, `SELECT key FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = -1
		ORDER BY key`, dagID, runID, taskID)
	if err != nil {
		return nil, fmt.Errorf("list xcom keys of %s/%s/%s: %w", dagID, runID, taskID, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// RunXComs reads the XComs of one DAG run for templates (it is a
// templating.XComPuller).
type RunXComs struct {
	q            Q
	dagID, runID string
}

// XComPuller returns the XComs of one DAG run for templates.
func (q Q) XComPuller(dagID, runID string) *RunXComs {
	return &RunXComs{q: q, dagID: dagID, runID: runID}
}

// Pull returns the value taskID pushed under key in this run as raw JSON
// (json.RawMessage), which templates decode with numbers kept exact. For a
// mapped task it is the list of its instances' values in map_index order.
func (x *RunXComs) Pull(ctx context.Context, taskID, key string) (any, bool, error) {
	rows, err := x.q.db.Query(ctx, `SELECT map_index, value FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND key = $4
		ORDER BY map_index`, x.dagID, x.runID, taskID, key)
	if err != nil {
		return nil, false, fmt.Errorf("read xcom %s/%s/%s %q: %w", x.dagID, x.runID, taskID, key, err)
	}
	type value struct {
		mapIndex int
		raw      []byte
	}
	values, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (value, error) {
		var v value
		err := r.Scan(&v.mapIndex, &v.raw)
		return v, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("read xcom %s/%s/%s %q: %w", x.dagID, x.runID, taskID, key, err)
	}
	if len(values) == 0 {
		return nil, false, nil
	}
	if values[0].mapIndex < 0 {
		return json.RawMessage(values[0].raw), true, nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(v.raw)
	}
	b.WriteByte(']')
	return json.RawMessage(b.Bytes()), true, nil
}

// PullMapIndex returns the value one mapped instance of taskID pushed
// under key (xcom_pull(..., map_indexes=N)).
func (x *RunXComs) PullMapIndex(ctx context.Context, taskID, key string, mapIndex int) (any, bool, error) {
	var b []byte
	err := x.q.db.QueryRow(ctx, `SELECT value FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4 AND key = $5`,
		x.dagID, x.runID, taskID, mapIndex, key).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read xcom %s/%s/%s[%d] %q: %w", x.dagID, x.runID, taskID, mapIndex, key, err)
	}
	return json.RawMessage(b), true, nil
}

// clearXComs deletes what tasks of a run pushed (they are being cleared).
func (q Q) clearXComs(ctx context.Context, dagID, runID string, taskIDs []string) error {
	_, err := q.db.Exec(ctx, `DELETE FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = ANY($3)`, dagID, runID, taskIDs)
	if err != nil {
		return fmt.Errorf("clear xcoms of %s/%s %v: %w", dagID, runID, taskIDs, err)
	}
	return nil
}

// deleteXComsOfRunsFinishedBefore deletes the XComs of the runs that
// DeleteFinishedRunsBefore deletes: xcom rows name their run by (dag_id,
// run_id) with no foreign key, so they do not go with it by cascade.
func (q Q) deleteXComsOfRunsFinishedBefore(ctx context.Context, t time.Time) error {
	_, err := q.db.Exec(ctx, `DELETE FROM xcom x USING dag_runs r
		WHERE x.dag_id = r.dag_id AND x.run_id = r.run_id AND r.state IN ('success', 'failed') AND r.ended_at < $1`, t)
	if err != nil {
		return fmt.Errorf("delete old xcoms: %w", err)
	}
	return nil
}

// XComEntry is one stored XCom value with its key.
type XComEntry struct {
	DagID, RunID, TaskID string
	MapIndex             int
	Key                  string
	Value                json.RawMessage
	CreatedAt            time.Time
}

// XComEntries lists a task instance's XComs by key (with values), and how many.
func (q Q) XComEntries(ctx context.Context, dagID, runID, taskID string, mapIndex, limit, offset int) ([]XComEntry, int, error) {
	const where = ` WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4`
	var total int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM xcom`+where, dagID, runID, taskID, mapIndex).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count xcoms of %s/%s/%s: %w", dagID, runID, taskID, err)
	}
	rows, err := q.db.Query(ctx, `SELECT dag_id, run_id, task_id, map_index, key, value, created_at FROM xcom`+where+`
		ORDER BY key LIMIT $5 OFFSET $6`, dagID, runID, taskID, mapIndex, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list xcoms of %s/%s/%s: %w", dagID, runID, taskID, err)
	}
	out, err := pgx.CollectRows(rows, scanXComEntry)
	return out, total, err
}

// XComEntryByKey returns one XCom entry; ErrNotFound if there is none.
func (q Q) XComEntryByKey(ctx context.Context, dagID, runID, taskID string, mapIndex int, key string) (XComEntry, error) {
	rows, err := q.db.Query(ctx, `SELECT dag_id, run_id, task_id, map_index, key, value, created_at FROM xcom
		WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4 AND key = $5`, dagID, runID, taskID, mapIndex, key)
	if err != nil {
		return XComEntry{}, fmt.Errorf("read xcom %s/%s/%s %q: %w", dagID, runID, taskID, key, err)
	}
	x, err := pgx.CollectExactlyOneRow(rows, scanXComEntry)
	if errors.Is(err, pgx.ErrNoRows) {
		return XComEntry{}, fmt.Errorf("xcom %q of task %s: %w", key, taskID, ErrNotFound)
	}
	return x, err
}

func scanXComEntry(r pgx.CollectableRow) (XComEntry, error) {
	var x XComEntry
	err := r.Scan(&x.DagID, &x.RunID, &x.TaskID, &x.MapIndex, &x.Key, &x.Value, &x.CreatedAt)
	return x, err
}
