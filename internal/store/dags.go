package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DagRow is a DAG as the database knows it.
type DagRow struct {
	DagID    string
	Path     string
	Hash     string // "" if it never parsed
	Schedule string
	Paused   bool
	Errors   string
	// Active is false once the DAG's file was removed from the DAGs folder
	// (DeactivateRemovedFiles): it gets no scheduled runs until saved again.
	Active bool
}

// SaveDagVersion stores a DAG file's source under its hash, once.
func (q Q) SaveDagVersion(ctx context.Context, hash, dagID, path string, source []byte) error {
	_, err := q.db.Exec(ctx, `INSERT INTO dag_versions (hash, dag_id, path, source) VALUES ($1, $2, $3, $4)
		ON CONFLICT (hash) DO NOTHING`, hash, dagID, path, source)
	if err != nil {
		return fmt.Errorf("save dag version %s: %w", dagID, err)
	}
	return nil
}

// SetDagCurrent makes hash the current version of dagID and clears its
// errors; a DAG new to the database starts paused when pausedIfNew.
func (q Q) SetDagCurrent(ctx context.Context, dagID, path, hash, schedule string, pausedIfNew bool) error {
	_, err := q.db.Exec(ctx, `INSERT INTO dags (dag_id, path, hash, schedule, is_paused) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (dag_id) DO UPDATE SET path = $2, hash = $3, schedule = $4, errors = NULL, is_active = true, updated_at = now()
		WHERE dags.hash IS DISTINCT FROM $3 OR dags.errors IS NOT NULL OR dags.path <> $2 OR NOT dags.is_active`, dagID, path, hash, schedule, pausedIfNew)
	if err != nil {
		return fmt.Errorf("set dag %s current: %w", dagID, err)
	}
	_, err = q.db.Exec(ctx, `DELETE FROM dag_files WHERE path = $1`, path)
	return err
}

// DeactivateRemovedFiles marks inactive the active DAGs whose file is under
// folder (a directory path as the scheduler walks it) but not among present
// (every DAG file found there, valid or not) and whose dag_id is not among
// defined (those the present files define), and forgets the parse errors
// of removed files, whether their DAG ever parsed or not. It returns the
// DAGs it deactivated.
func (q Q) DeactivateRemovedFiles(ctx context.Context, folder string, present, defined []string) ([]string, error) {
	prefix := strings.TrimSuffix(folder, "/") + "/"
	rows, err := q.db.Query(ctx, `UPDATE dags SET is_active = false, errors = NULL, updated_at = now()
		WHERE is_active AND starts_with(path, $1) AND NOT (path = ANY(coalesce($2::text[], '{}')))
		AND NOT (dag_id = ANY(coalesce($3::text[], '{}'))) RETURNING dag_id`, prefix, present, defined)
	if err != nil {
		return nil, fmt.Errorf("deactivate DAGs of removed files: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("deactivate DAGs of removed files: %w", err)
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM dag_files WHERE starts_with(path, $1) AND NOT (path = ANY(coalesce($2::text[], '{}')))`, prefix, present); err != nil {
		return nil, fmt.Errorf("forget removed broken files: %w", err)
	}
	return ids, nil
}

// SetFileBroken records a file's parse errors. A DAG that came from this file
// keeps its last good version and shows the errors; a file that never parsed
// is listed by path.
func (q Q) SetFileBroken(ctx context.Context, path, hash, errs string) error {
	tag, err := q.db.Exec(ctx, `UPDATE dags SET errors = $2, updated_at = now() WHERE path = $1 AND errors IS DISTINCT FROM $2`, path, errs)
	if err != nil {
		return fmt.Errorf("mark %s broken: %w", path, err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var known bool
	if err := q.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dags WHERE path = $1)`, path).Scan(&known); err != nil {
		return err
	}
	if known {
		return nil
	}
	_, err = q.db.Exec(ctx, `INSERT INTO dag_files (path, hash, errors) VALUES ($1, $2, $3)
		ON CONFLICT (path) DO UPDATE SET hash = $2, errors = $3, updated_at = now()`, path, hash, errs)
	return err
}

// BrokenFile is a DAG file that never parsed.
type BrokenFile struct {
	Path   string
	Errors string
}

// BrokenFiles lists files that never parsed.
func (q Q) BrokenFiles(ctx context.Context) ([]BrokenFile, error) {
	rows, err := q.db.Query(ctx, `SELECT path, coalesce(errors, '') FROM dag_files ORDER BY path`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (BrokenFile, error) {
		var b BrokenFile
		err := r.Scan(&b.Path, &b.Errors)
		return b, err
	})
}

// Dags lists every DAG.
func (q Q) Dags(ctx context.Context) ([]DagRow, error) {
	rows, err := q.db.Query(ctx, `SELECT `+dagColumns+` FROM dags ORDER BY dag_id`)
	if err != nil {
		return nil, fmt.Errorf("list dags: %w", err)
	}
	return pgx.CollectRows(rows, scanDag)
}

// ScheduledDags returns the unpaused, active DAGs with a cron schedule and
// a parsed version, reading only what run creation needs (DagID, Hash, Schedule):
// the scheduler reads it every loop pass, so at thousands of DAGs it skips
// the paused ones, the paths and the import errors.
func (q Q) ScheduledDags(ctx context.Context) ([]DagRow, error) {
	rows, err := q.db.Query(ctx, `SELECT dag_id, hash, schedule FROM dags
		WHERE NOT is_paused AND is_active AND schedule <> '' AND hash IS NOT NULL AND hash <> '' ORDER BY dag_id`)
	if err != nil {
		return nil, fmt.Errorf("list scheduled dags: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DagRow, error) {
		var d DagRow
		err := r.Scan(&d.DagID, &d.Hash, &d.Schedule)
		return d, err
	})
}

// DagsByID returns the rows of the given DAGs (those that exist).
func (q Q) DagsByID(ctx context.Context, dagIDs []string) ([]DagRow, error) {
	rows, err := q.db.Query(ctx, `SELECT `+dagColumns+` FROM dags WHERE dag_id = ANY($1)`, dagIDs)
	if err != nil {
		return nil, fmt.Errorf("dags by id: %w", err)
	}
	return pgx.CollectRows(rows, scanDag)
}

// Dag returns one DAG; ErrNotFound if unknown.
func (q Q) Dag(ctx context.Context, dagID string) (DagRow, error) {
	rows, err := q.db.Query(ctx, `SELECT `+dagColumns+` FROM dags WHERE dag_id = $1`, dagID)
	if err != nil {
		return DagRow{}, err
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDag)
	if errors.Is(err, pgx.ErrNoRows) {
		return DagRow{}, fmt.Errorf("dag %q: %w", dagID, ErrNotFound)
	}
	return d, err
}

// dagColumns are the columns scanDag reads, in its order.
const dagColumns = `dag_id, path, coalesce(hash, ''), schedule, is_paused, coalesce(errors, ''), is_active`

func scanDag(r pgx.CollectableRow) (DagRow, error) {
	var d DagRow
	err := r.Scan(&d.DagID, &d.Path, &d.Hash, &d.Schedule, &d.Paused, &d.Errors, &d.Active)
	return d, err
}

// SetPaused pauses or unpauses a DAG.
func (q Q) SetPaused(ctx context.Context, dagID string, paused bool) error {
	tag, err := q.db.Exec(ctx, `UPDATE dags SET is_paused = $2, updated_at = now() WHERE dag_id = $1`, dagID, paused)
	if err != nil {
		return fmt.Errorf("pause %s: %w", dagID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("dag %q: %w", dagID, ErrNotFound)
	}
	return nil
}

// LockDag takes the DAG's row lock for this transaction (run creation and
// starting is serialised per DAG across schedulers). ok is false when another
// transaction holds it and skipLocked is set.
func (q Q) LockDag(ctx context.Context, dagID string, skipLocked bool) (ok bool, err error) {
	sql := `SELECT 1 FROM dags WHERE dag_id = $1 FOR UPDATE`
	if skipLocked {
		sql += ` SKIP LOCKED`
	}
	var one int
	err = q.db.QueryRow(ctx, sql, dagID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock dag %s: %w", dagID, err)
	}
	return true, nil
}

// DagSource returns a DAG version's file source and path.
func (q Q) DagSource(ctx context.Context, hash string) (source []byte, path string, err error) {
	err = q.db.QueryRow(ctx, `SELECT source, path FROM dag_versions WHERE hash = $1`, hash).Scan(&source, &path)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("dag version %s: %w", hash, ErrNotFound)
	}
	return source, path, err
}

// DeleteUnusedDagVersions deletes the stored DAG versions that no run is
// pinned to and that are no DAG's current version. It returns how many went.
func (q Q) DeleteUnusedDagVersions(ctx context.Context) (int64, error) {
	tag, err := q.db.Exec(ctx, `DELETE FROM dag_versions v
		WHERE NOT EXISTS (SELECT 1 FROM dag_runs r WHERE r.dag_hash = v.hash)
		  AND NOT EXISTS (SELECT 1 FROM dags d WHERE d.hash = v.hash)`)
	if err != nil {
		return 0, fmt.Errorf("delete unused DAG versions: %w", err)
	}
	return tag.RowsAffected(), nil
}

// SetDagTags records a DAG's tags (for the API's tag filter).
func (q Q) SetDagTags(ctx context.Context, dagID string, tags []string) error {
	if tags == nil {
		tags = []string{}
	}
	_, err := q.db.Exec(ctx, `UPDATE dags SET tags = $2 WHERE dag_id = $1 AND tags IS DISTINCT FROM $2`, dagID, tags)
	if err != nil {
		return fmt.Errorf("set tags of dag %s: %w", dagID, err)
	}
	return nil
}

// DagFilter selects DAGs; zero fields do not filter.
type DagFilter struct {
	Tags            []string // any of them
	Paused          *bool
	IDPattern       string // SQL LIKE pattern
	HasImportErrors *bool
	OrderBy         string // a key of DagOrders, "-" before it for descending
	Limit, Offset   int
}

// DagOrders are the fields DAG lists may be ordered by.
var DagOrders = map[string]string{"dag_id": "dag_id", "is_paused": "is_paused", "fileloc": "path"}

// DagListRow is a DAG in a list, with its tags.
type DagListRow struct {
	DagRow
	Tags []string
}

// ListDags returns a page of matching DAGs and how many match in all.
func (q Q) ListDags(ctx context.Context, f DagFilter) ([]DagListRow, int, error) {
	order, err := orderClause(f.OrderBy, DagOrders, "dag_id")
	if err != nil {
		return nil, 0, err
	}
	const where = ` WHERE (cardinality($1::text[]) = 0 OR tags && $1) AND ($2::boolean IS NULL OR is_paused = $2)
		AND ($3 = '' OR dag_id ILIKE '%' || $3 || '%') AND ($4::boolean IS NULL OR (errors IS NOT NULL) = $4)`
	tags := f.Tags
	if tags == nil {
		tags = []string{}
	}
	args := []any{tags, f.Paused, f.IDPattern, f.HasImportErrors}
	var total int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM dags`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count dags: %w", err)
	}
	rows, err := q.db.Query(ctx, `SELECT `+dagColumns+`, tags
		FROM dags`+where+` ORDER BY `+order+`, dag_id LIMIT $5 OFFSET $6`, append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list dags: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DagListRow, error) {
		var d DagListRow
		err := r.Scan(&d.DagID, &d.Path, &d.Hash, &d.Schedule, &d.Paused, &d.Errors, &d.Active, &d.Tags)
		return d, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list dags: %w", err)
	}
	return out, total, nil
}

// DagVersion is one stored version of a DAG file.
type DagVersion struct {
	Hash, DagID, Path string
	Source            []byte
	CreatedAt         time.Time
}

// DagVersions lists a DAG's stored versions, newest first, and how many.
func (q Q) DagVersions(ctx context.Context, dagID string, limit, offset int) ([]DagVersion, int, error) {
	var total int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM dag_versions WHERE dag_id = $1`, dagID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count versions of %s: %w", dagID, err)
	}
	rows, err := q.db.Query(ctx, `SELECT hash, dag_id, path, source, created_at FROM dag_versions WHERE dag_id = $1
		ORDER BY created_at DESC, hash LIMIT $2 OFFSET $3`, dagID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list versions of %s: %w", dagID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DagVersion, error) {
		var v DagVersion
		err := r.Scan(&v.Hash, &v.DagID, &v.Path, &v.Source, &v.CreatedAt)
		return v, err
	})
	return out, total, err
}

// ImportError is a DAG file that does not parse: a DAG's file that broke
// (DagID set; its last good version keeps running) or one that never parsed.
type ImportError struct {
	Path, DagID, Errors string
	At                  time.Time
}

// ImportErrors lists the files that do not parse, by path, and how many.
func (q Q) ImportErrors(ctx context.Context, limit, offset int) ([]ImportError, int, error) {
	const all = `SELECT path, dag_id, errors, updated_at FROM dags WHERE errors IS NOT NULL
		UNION ALL SELECT path, '', coalesce(errors, ''), updated_at FROM dag_files`
	var total int
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM (`+all+`) e`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count import errors: %w", err)
	}
	rows, err := q.db.Query(ctx, `SELECT * FROM (`+all+`) e ORDER BY path, dag_id LIMIT $1 OFFSET $2`, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("list import errors: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ImportError, error) {
		var e ImportError
		err := r.Scan(&e.Path, &e.DagID, &e.Errors, &e.At)
		return e, err
	})
	return out, total, err
}

// orderClause turns an API order_by ("field" or "-field") into SQL from the
// allowed columns; anything else is an error naming the value. No text of
// the request reaches the SQL.
func orderClause(orderBy string, allowed map[string]string, def string) (string, error) {
	if orderBy == "" {
		orderBy = def
	}
	desc := strings.HasPrefix(orderBy, "-")
	col, ok := allowed[strings.TrimPrefix(orderBy, "-")]
	if !ok {
		keys := make([]string, 0, len(allowed))
		for k := range allowed {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return "", fmt.Errorf("%w: order_by %q: want one of %s, with \"-\" before it for descending", ErrBadInput, orderBy, strings.Join(keys, ", "))
	}
	if desc {
		return col + " DESC", nil
	}
	return col, nil
}

// ErrBadInput is returned for a request a store call cannot answer as asked.
var ErrBadInput = errors.New("bad input")

// DagTags returns a DAG's tags.
func (q Q) DagTags(ctx context.Context, dagID string) ([]string, error) {
	var tags []string
	err := q.db.QueryRow(ctx, `SELECT tags FROM dags WHERE dag_id = $1`, dagID).Scan(&tags)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("dag %q: %w", dagID, ErrNotFound)
	}
	return tags, err
}

// LiveDagHashes are the DAG versions in use: current holds each DAG's
// current one, running those of queued and running runs.
func (q Q) LiveDagHashes(ctx context.Context) (current, running map[string]bool, err error) {
	rows, err := q.db.Query(ctx, `SELECT hash, false FROM dags WHERE hash IS NOT NULL
		UNION ALL SELECT DISTINCT dag_hash, true FROM dag_runs WHERE state IN ('queued', 'running')`)
	if err != nil {
		return nil, nil, fmt.Errorf("live dag versions: %w", err)
	}
	defer rows.Close()
	current, running = map[string]bool{}, map[string]bool{}
	for rows.Next() {
		var hash string
		var run bool
		if err := rows.Scan(&hash, &run); err != nil {
			return nil, nil, fmt.Errorf("live dag versions: %w", err)
		}
		if run {
			running[hash] = true
		} else {
			current[hash] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("live dag versions: %w", err)
	}
	return current, running, nil
}
