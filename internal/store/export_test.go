package store

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// QueryRowForTest runs a query in q's transaction, for tests that read what
// the transaction itself did (pg_stat_xact_*).
func (q Q) QueryRowForTest(ctx context.Context, sql string, args ...any) pgx.Row {
	return q.db.QueryRow(ctx, sql, args...)
}
