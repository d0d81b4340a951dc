package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Pool is a named number of slots shared by the task instances that name it.
type Pool struct {
	Name        string
	Slots       int
	Description string
	Running     int // running task instances (a deferred one has freed its slot)
	Queued      int
}

// DefaultPool is the pool of a task that names none; it cannot be deleted.
const DefaultPool = "default_pool"

// Pools lists pools by name with their use, and how many there are.
func (q Q) Pools(ctx context.Context, limit, offset int) ([]Pool, int, error) {
	var total int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM pools`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count pools: %w", err)
	}
	rows, err := q.db.Query(ctx, `SELECT p.name, p.slots, coalesce(p.description, ''),
			(SELECT count(*) FROM task_instances WHERE pool = p.name AND state = 'running')::int,
			(SELECT count(*) FROM task_instances WHERE pool = p.name AND state = 'queued')::int
		FROM pools p ORDER BY p.name LIMIT $1 OFFSET $2`, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list pools: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanPool)
	return out, total, err
}

// PoolByName returns one pool with its use; ErrNotFound if unknown.
func (q Q) PoolByName(ctx context.Context, name string) (Pool, error) {
	rows, err := q.db.Query(ctx, `SELECT p.name, p.slots, coalesce(p.description, ''),
			(SELECT count(*) FROM task_instances WHERE pool = p.name AND state = 'running')::int,
			(SELECT count(*) FROM task_instances WHERE pool = p.name AND state = 'queued')::int
		FROM pools p WHERE p.name = $1`, name)
	if err != nil {
		return Pool{}, fmt.Errorf("read pool %s: %w", name, err)
	}
	p, err := pgx.CollectExactlyOneRow(rows, scanPool)
	if errors.Is(err, pgx.ErrNoRows) {
		return Pool{}, fmt.Errorf("pool %q: %w", name, ErrNotFound)
	}
	return p, err
}

func scanPool(r pgx.CollectableRow) (Pool, error) {
	var p Pool
	err := r.Scan(&p.Name, &p.Slots, &p.Description, &p.Running, &p.Queued)
	return p, err
}

// CreatePool adds a pool; ErrExists if the name is taken.
func (q Q) CreatePool(ctx context.Context, name string, slots int, description string) error {
	_, err := q.db.Exec(ctx, `INSERT INTO pools (name, slots, description) VALUES ($1, $2, NULLIF($3, ''))`, name, slots, description)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("pool %q: %w", name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create pool %s: %w", name, err)
	}
	return nil
}

// UpdatePool changes a pool's slots and/or description (nil = keep).
func (q Q) UpdatePool(ctx context.Context, name string, slots *int, description *string) error {
	tag, err := q.db.Exec(ctx, `UPDATE pools SET slots = coalesce($2, slots),
		description = CASE WHEN $3::text IS NULL THEN description ELSE NULLIF($3, '') END, updated_at = now()
		WHERE name = $1`, name, slots, description)
	if err != nil {
		return fmt.Errorf("update pool %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pool %q: %w", name, ErrNotFound)
	}
	return nil
}

// DeletePool removes a pool (not default_pool). Its tasks then have
// default_pool's number of slots, as a pool that was never declared.
func (q Q) DeletePool(ctx context.Context, name string) error {
	if name == DefaultPool {
		return fmt.Errorf("pool %s cannot be deleted", DefaultPool)
	}
	tag, err := q.db.Exec(ctx, `DELETE FROM pools WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete pool %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pool %q: %w", name, ErrNotFound)
	}
	return nil
}

// UpsertPools sets the slots of the named pools, creating the missing ones:
// the pools of podflow.yaml at scheduler start (the file wins for its names).
func (q Q) UpsertPools(ctx context.Context, pools map[string]int) error {
	if len(pools) == 0 {
		return nil
	}
	names, slots := make([]string, 0, len(pools)), make([]int32, 0, len(pools))
	for n, s := range pools {
		names, slots = append(names, n), append(slots, int32(s))
	}
	_, err := q.db.Exec(ctx, `INSERT INTO pools (name, slots) SELECT * FROM unnest($1::text[], $2::int[])
		ON CONFLICT (name) DO UPDATE SET slots = excluded.slots, updated_at = now() WHERE pools.slots <> excluded.slots`, names, slots)
	if err != nil {
		return fmt.Errorf("save configured pools: %w", err)
	}
	return nil
}

// PoolSlots maps every pool to its slots, for claiming.
func (q Q) PoolSlots(ctx context.Context) (map[string]int, error) {
	rows, err := q.db.Query(ctx, `SELECT name, slots FROM pools`)
	if err != nil {
		return nil, fmt.Errorf("read pool slots: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var n string
		var s int
		if err := rows.Scan(&n, &s); err != nil {
			return nil, err
		}
		out[n] = s
	}
	return out, rows.Err()
}
