package pgtest

import (
	"context"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/internal/localpg"
	"github.com/podflow/podflow/migrations"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestNewDatabase(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var names []string
	t.Run("group", func(t *testing.T) {
		for _, sub := range []string{"a", "b", "c"} {
			t.Run(sub, func(t *testing.T) {
				t.Parallel()
				url := NewDatabase(t)
				conn, err := pgx.Connect(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				var name string
				var tables int
				if err := conn.QueryRow(ctx, "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&name, &tables); err != nil {
					t.Fatal(err)
				}
				if tables != 0 {
					t.Errorf("new database %s has %d tables", name, tables)
				}
				if _, err := conn.Exec(ctx, "CREATE TABLE t(v int)"); err != nil {
					t.Fatal(err) // would fail if two tests shared a database
				}
				mu.Lock()
				names = append(names, name)
				mu.Unlock()
				// A connection left open must not stop the drop.
				leak, err := pgx.Connect(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				_ = leak
			})
		}
	})
	if len(names) != 3 {
		t.Fatalf("databases: %v", names)
	}
	base, err := admin()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = ANY($1)", names).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d of %v not dropped at cleanup", left, names)
	}
}

func TestDatabaseName(t *testing.T) {
	n := databaseName("TestSomething/with spaces/and-ÜTF8/"+strings.Repeat("x", 80), 123456, 42)
	if len(n) > 63 || !strings.HasPrefix(n, "pgt_testsomething_with_spaces_and_") || !strings.HasSuffix(n, "_123456_42") {
		t.Errorf("databaseName = %q (%d bytes)", n, len(n))
	}
	if a, b := databaseName("T", 1, 1), databaseName("T", 1, 2); a == b {
		t.Errorf("not unique: %s", a)
	}
}

// The throwaway cluster asks for a password: a database URL without it is
// refused, with it admitted.
func TestNewDatabaseNeedsPassword(t *testing.T) {
	if os.Getenv("DATABASE_URL") != "" {
		t.Skip("DATABASE_URL is set: its server's authentication is not ours to test")
	}
	t.Parallel()
	ctx := context.Background()
	dbURL := NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := u.User.Password(); !ok {
		t.Fatalf("NewDatabase URL %s has no password", localpg.RedactURL(dbURL))
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("with the password: %v", err)
	}
	conn.Close(ctx)
	u.User = url.User(u.User.Username())
	conn, err = pgx.Connect(ctx, u.String())
	if err == nil {
		conn.Close(ctx)
	}
	if !localpg.IsAuthFailure(err) {
		t.Errorf("without the password: %v; want the login refused", err)
	}
}

// Migrated databases are copies of one template: each has the current
// schema, and writes to one are not seen by another.
func TestNewMigratedDatabase(t *testing.T) {
	ctx := context.Background()
	for _, sub := range []string{"a", "b", "c"} {
		t.Run(sub, func(t *testing.T) {
			t.Parallel()
			conn, err := pgx.Connect(ctx, NewMigratedDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var version, dags int
			if err := conn.QueryRow(ctx, "SELECT max(version), (SELECT count(*) FROM dags) FROM schema_migrations").Scan(&version, &dags); err != nil {
				t.Fatal(err)
			}
			if version != migrations.Latest() || dags != 0 {
				t.Errorf("schema version %d, %d dags; want %d and none", version, dags, migrations.Latest())
			}
			// Would fail on the second copy if the copies shared rows.
			if _, err := conn.Exec(ctx, "INSERT INTO dags (dag_id, path, schedule) VALUES ('d', 'd.yaml', '')"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
