// Package pgtest gives each test a fresh PostgreSQL database: on the server
// of DATABASE_URL when set, else on a throwaway local cluster (fsync off)
// shared by the tests of one test binary. The throwaway cluster has a
// random superuser password, which is in every URL handed out: other OS
// users of the machine cannot log in to it.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		t.Parallel()
//		url := pgtest.NewDatabase(t)
//		...
//	}
//
// NewMigratedDatabase is the same with podflow's schema already applied: the
// migrations run once per test binary into a template database, and each
// test's database is a copy of it (CREATE DATABASE … TEMPLATE), which takes
// a few milliseconds instead of a migration per test.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/podflow/podflow/internal/localpg"
	"github.com/podflow/podflow/migrations"
)

var (
	mu       sync.Mutex
	started  bool              // the first NewDatabase looked for a server
	server   *localpg.Postgres // the throwaway cluster, if we started one
	adminURL string
	startErr error

	counter atomic.Int64

	templateOnce sync.Once
	templateDB   string // the migrated template database, set once
	templateErr  error
	templateName string // templateDB until Stop drops it (guarded by mu)
)

// Main runs the tests of one test binary, then stops the throwaway cluster
// if a test started one (the cluster starts with the first NewDatabase, so
// test binaries or -run selections that need no database pay nothing).
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Stop drops the migrated template database and stops the throwaway
// cluster if one was started; for a TestMain that also manages other
// resources (Main calls it).
func Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mu.Lock()
	s, base, tmpl := server, adminURL, templateName
	server, templateName = nil, ""
	mu.Unlock()
	if s == nil {
		// On DATABASE_URL's server the template would outlive us.
		if tmpl != "" {
			return dropTemplate(ctx, base, tmpl)
		}
		return nil
	}
	return s.Stop(ctx)
}

// admin returns the URL of the server to create databases on, starting the
// throwaway cluster on first use. Without Main, nobody calls Stop: the
// cluster's watchdog stops it and removes its directory within a second or
// so of the test binary's exit.
func admin() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if started {
		return adminURL, startErr
	}
	started = true
	if u := os.Getenv("DATABASE_URL"); u != "" {
		adminURL = u
		return adminURL, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := localpg.StartPostgres(ctx, localpg.PostgresOptions{})
	if err != nil {
		startErr = fmt.Errorf("pgtest: these tests need PostgreSQL: set DATABASE_URL to a server where they may create databases, "+
			"or install the PostgreSQL server binaries (e.g. apt-get install postgresql) for a throwaway local cluster: %w", err)
		return "", startErr
	}
	server, adminURL = p, p.URL
	return adminURL, nil
}

// NewDatabase creates a fresh, empty database for this test and returns its
// URL. The database is dropped (WITH (FORCE), closing connections still
// open) when the test and its subtests finish. Safe for t.Parallel().
// It fails the test if there is no DATABASE_URL and no local PostgreSQL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base, err := admin()
	if err != nil {
		t.Fatal(err)
	}
	name := databaseName(t.Name(), os.Getpid(), counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dbURL, err := (&localpg.Postgres{URL: base}).CreateDatabase(ctx, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dropDatabase(ctx, base, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dbURL
}

// NewMigratedDatabase is NewDatabase with podflow's migrations applied: a
// copy of a template database migrated once per test binary. Safe for
// t.Parallel().
func NewMigratedDatabase(t testing.TB) string {
	t.Helper()
	base, err := admin()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := migratedTemplate(base)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := databaseName(t.Name(), os.Getpid(), counter.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: create database %s: connect: %v", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s from template %s: %v", name, tmpl, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dropDatabase(ctx, base, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	dbURL, err := localpg.WithDatabase(base, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dbURL
}

// migratedTemplate makes the template database on first use: created,
// migrated, then marked as a template with no connections left open (CREATE
// DATABASE … TEMPLATE refuses a source that anyone is connected to).
func migratedTemplate(base string) (string, error) {
	templateOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		name := databaseName("template", os.Getpid(), counter.Add(1))
		url, err := (&localpg.Postgres{URL: base}).CreateDatabase(ctx, name)
		if err != nil {
			templateErr = err
			return
		}
		templateDB = name
		mu.Lock()
		templateName = name // for Stop to drop
		mu.Unlock()
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			templateErr = fmt.Errorf("migrate template %s: connect: %w", name, err)
			return
		}
		_, err = migrations.Apply(ctx, pool)
		pool.Close()
		if err != nil {
			templateErr = fmt.Errorf("migrate template %s: %w", name, err)
			return
		}
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			templateErr = fmt.Errorf("mark template %s: connect: %w", name, err)
			return
		}
		defer conn.Close(context.Background())
		// A template refuses new connections, so no test can hold it open
		// and block the copies.
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
			templateErr = fmt.Errorf("mark template %s: %w", name, err)
		}
	})
	return templateDB, templateErr
}

// dropTemplate drops the template database (a template must be unmarked
// before it can be dropped).
func dropTemplate(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("drop template %s: connect: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH IS_TEMPLATE false"); err != nil {
		return fmt.Errorf("drop template %s: %w", name, err)
	}
	return dropDatabase(ctx, adminURL, name)
}

func dropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("drop database %s: connect: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// databaseName makes a database name, at most 63 bytes (PostgreSQL's
// limit), from the test name, the process id (test binaries of several
// packages may share DATABASE_URL's server) and a counter.
func databaseName(testName string, pid int, n int64) string {
	s := unsafeChars.ReplaceAllString(strings.ToLower(testName), "_")
	s = strings.Trim(s, "_")
	suffix := fmt.Sprintf("_%d_%d", pid, n)
	s = "pgt_" + s
	if len(s)+len(suffix) > 63 {
		s = strings.TrimRight(s[:63-len(suffix)], "_")
	}
	return s + suffix
}
