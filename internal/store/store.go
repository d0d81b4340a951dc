package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/podflow/podflow/migrations"
)

// Notification channels.
const (
	// ChannelTaskQueued wakes workers: task instances were queued.
	ChannelTaskQueued = "podflow_task_queued"
	// ChannelTaskFinished tells waiters that a run finished.
	ChannelTaskFinished = "podflow_task_finished"
	// ChannelSchedulerWake wakes scheduler loops: a run was queued, a task
	// was resumed by a trigger or cleared.
	ChannelSchedulerWake = "podflow_scheduler_wake"
	// ChannelTriggerCreated wakes triggerers.
	ChannelTriggerCreated = "podflow_trigger_created"
	// ChannelTaskStopped tells schedulers that running task instances were
	// taken from them (their run timed out, they were cleared): each
	// scheduler stops the tries it runs that are no longer its own at once,
	// instead of at its next heartbeat.
	ChannelTaskStopped = "podflow_task_stopped"
)

// DBTX is what both a pool and a transaction offer.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Q runs podflow's statements on a pool or in a transaction.
type Q struct{ db DBTX }

// Store is the metadata database.
type Store struct {
	Q
	Pool *pgxpool.Pool
}

// New wraps a pool.
func New(pool *pgxpool.Pool) *Store { return &Store{Q: Q{db: pool}, Pool: pool} }

// Open connects, applies pending migrations and returns the store.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if _, err := migrations.Apply(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return New(pool), nil
}

// Close closes the pool.
func (s *Store) Close() { s.Pool.Close() }

// CheckSchema fails with a clear message unless the schema is current.
func (s *Store) CheckSchema(ctx context.Context) error {
	_, err := migrations.Check(ctx, s.Pool)
	return err
}

// InTx runs fn in one transaction.
func (s *Store) InTx(ctx context.Context, fn func(q Q) error) error {
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error { return fn(Q{db: tx}) })
}

// Notify sends a notification (delivered at commit inside a transaction).
func (q Q) Notify(ctx context.Context, channel, payload string) error {
	_, err := q.db.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	return err
}

// Ping checks the database answers.
func (q Q) Ping(ctx context.Context) error {
	var one int
	return q.db.QueryRow(ctx, `SELECT 1`).Scan(&one)
}

// ErrNotFound is returned for unknown DAGs, runs and tasks.
var ErrNotFound = errors.New("not found")

// ErrExists is returned when creating something (a user, an API key, a
// pool) whose name is taken.
var ErrExists = errors.New("already exists")

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
