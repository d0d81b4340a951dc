// Package xcomstore keeps XCom values — small JSON results tasks pass to
// their downstreams — in Postgres, keyed by (dag_id, run_id, task_id,
// map_index, key). A value is written in the transaction that marks its task
// successful and is deleted when the task is cleared.
package xcomstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ReturnValue is the default key, as Airflow's.
const ReturnValue = "return_value"

// DefaultMaxSize is the largest value accepted (1 MiB).
const DefaultMaxSize = 1 << 20

// DB is a pool or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Encode turns a value into JSON, refusing values over maxSize bytes.
func Encode(key string, v any, maxSize int) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("xcom %q: value is not JSON: %w", key, err)
	}
	if maxSize > 0 && len(b) > maxSize {
		return nil, fmt.Errorf("xcom %q: value is %d bytes, over the %d-byte limit", key, len(b), maxSize)
	}
	return b, nil
}

// Push stores one value.
func Push(ctx context.Context, db DB, dagID, runID, taskID string, mapIndex int, key string, value json.RawMessage) error {
	_, err := db.Exec(ctx, `INSERT INTO xcom (dag_id, run_id, task_id, map_index, key, value) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (dag_id, run_id, task_id, map_index, key) DO UPDATE SET value = $6, created_at = now()`,
		dagID, runID, taskID, mapIndex, key, []byte(value))
	if err != nil {
		return fmt.Errorf("push xcom %s/%s/%s %q: %w", dagID, runID, taskID, key, err)
	}
	return nil
}

// Get reads one raw value; found is false when there is none.
func Get(ctx context.Context, db DB, dagID, runID, taskID string, mapIndex int, key string) (json.RawMessage, bool, error) {
	var b []byte
	err := db.QueryRow(ctx, `SELECT value FROM xcom WHERE dag_id = $1 AND run_id = $2 AND task_id = $3 AND map_index = $4 AND key = $5`,
		dagID, runID, taskID, mapIndex, key).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read xcom %s/%s/%s %q: %w", dagID, runID, taskID, key, err)
	}
	return b, true, nil
}

// Decode decodes a stored value with numbers kept exact (1 stays 1).
func Decode(raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// Puller reads XComs of one DAG run for templates (templating.XComPuller).
type Puller struct {
	DB    DB
	DagID string
	RunID string
}

// Pull returns taskID's key in this run as raw JSON, which templates
// decode with numbers kept exact.
func (p *Puller) Pull(ctx context.Context, taskID, key string) (any, bool, error) {
	raw, ok, err := Get(ctx, p.DB, p.DagID, p.RunID, taskID, -1, key)
	if err != nil || !ok {
		return nil, ok, err
	}
	return raw, true, nil
}
