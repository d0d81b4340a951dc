package localpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startTestPostgres starts a cluster and stops it at cleanup, checking that
// no server process is left.
func startTestPostgres(t *testing.T, opts PostgresOptions) *Postgres {
	t.Helper()
	begin := time.Now()
	p, err := StartPostgres(testContext(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("initdb+start: %v (dir %s, port %d)", time.Since(begin).Round(time.Millisecond), p.Dir, p.Port)
	t.Cleanup(func() { stopAndCheck(t, p) })
	return p
}

func stopAndCheck(t *testing.T, p *Postgres) {
	t.Helper()
	pid := postmasterPID(p.Dir)
	if err := p.Stop(context.Background()); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if pid != 0 && processAlive(pid) {
		t.Errorf("postgres pid %d still running after Stop", pid)
	}
}

func queryString(t *testing.T, ctx context.Context, url, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStartPostgres(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	p := startTestPostgres(t, PostgresOptions{})
	if want := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", p.Password, p.Port); p.Password == "" || p.URL != want {
		t.Errorf("URL = %s, want %s", p.URL, want)
	}
	for setting, want := range map[string]string{
		"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
		"max_connections": "300", "listen_addresses": "127.0.0.1", "unix_socket_directories": p.Dir,
	} {
		if got := queryString(t, ctx, p.URL, "SHOW "+setting); got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	begin := time.Now()
	url, err := p.CreateDatabase(ctx, "Some db")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("CreateDatabase: %v", time.Since(begin).Round(time.Millisecond))
	if got := queryString(t, ctx, url, "SELECT current_database()"); got != "Some db" {
		t.Errorf("current_database() = %q via %s", got, url)
	}
	// Through the unix socket in Dir too.
	sock := fmt.Sprintf("host=%s port=%d user=postgres password=%s dbname=postgres", p.Dir, p.Port, p.Password)
	if got := queryString(t, ctx, sock, "SELECT 'ok'"); got != "ok" {
		t.Errorf("unix socket: %q", got)
	}
	if !p.runner.ownsPrivateDir(p.templateDir()) {
		t.Errorf("no cached template cluster at %s", p.templateDir())
	}
	if _, err := p.CreateDatabase(ctx, "Some db"); err == nil {
		t.Error("CreateDatabase of an existing database: no error")
	}

	stopAndCheck(t, p)
	if _, err := os.Stat(p.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary data directory %s not removed by Stop: %v", p.Dir, err)
	}
	if err := p.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// A given Dir keeps its data across Stop and StartPostgres; Log receives
// the server's output.
func TestStartPostgresDirAndLog(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dir, err := os.MkdirTemp("", "podflow-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var log syncBuffer
	p := startTestPostgres(t, PostgresOptions{Dir: dir, Log: &log})
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept(v text); INSERT INTO kept VALUES ('hello')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	stopAndCheck(t, p)
	if !strings.Contains(log.String(), "database system is ready to accept connections") {
		t.Errorf("Log did not get the server output:\n%s", log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Fatalf("a given Dir must be kept: %v", err)
	}

	begin := time.Now()
	p2 := startTestPostgres(t, PostgresOptions{Dir: dir, Fsync: true})
	t.Logf("restart (no initdb): %v", time.Since(begin).Round(time.Millisecond))
	if got := queryString(t, ctx, p2.URL, "SELECT v FROM kept"); got != "hello" {
		t.Errorf("after restart: %q", got)
	}
	if got := queryString(t, ctx, p2.URL, "SHOW fsync"); got != "on" {
		t.Errorf("Fsync: true gave fsync=%s", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "postgres.log")); err != nil || len(b) == 0 {
		t.Errorf("Log nil: Dir/postgres.log empty or missing: %v", err)
	}
}

func TestStartPostgresNonEmptyDir(t *testing.T) {
	dir, err := os.MkdirTemp("", "podflow-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "stray"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = StartPostgres(testContext(t), PostgresOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("err = %v, want a 'not empty' error", err)
	}
}

// As root, a directory the postgres user cannot reach is a clear error.
func TestStartPostgresUnreachableDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only as root")
	}
	dir := filepath.Join(t.TempDir(), "data") // t.TempDir's parent is 0700
	_, err := StartPostgres(testContext(t), PostgresOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("err = %v, want a 'cannot reach' error", err)
	}
}

// If the process that started the server dies without Stop, the watchdog
// stops the server and removes its temporary directory.
func TestWatchdogStopsOrphan(t *testing.T) {
	if os.Getenv("PODFLOW_TEST_ORPHAN") == "1" {
		p, err := StartPostgres(context.Background(), PostgresOptions{})
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		fmt.Printf("STARTED %s %d\n", p.Dir, postmasterPID(p.Dir))
		time.Sleep(time.Hour) // killed by the parent test
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdogStopsOrphan$", "-test.v")
	cmd.Env = append(os.Environ(), "PODFLOW_TEST_ORPHAN=1")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	var pid int
	deadline := time.Now().Add(time.Minute)
	for dir == "" && time.Now().Before(deadline) {
		for _, line := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "STARTED" {
				dir = f[1]
				pid, _ = strconv.Atoi(f[2])
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if dir == "" || pid == 0 {
		t.Fatalf("child did not start postgres:\n%s", out.String())
	}
	begin := time.Now()
	for processAlive(pid) && time.Since(begin) < 30*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	if processAlive(pid) {
		t.Fatalf("orphaned postgres pid %d still running 30s after its owner died", pid)
	}
	t.Logf("orphan stopped %v after its owner was killed", time.Since(begin).Round(time.Millisecond))
	for time.Since(begin) < 10*time.Second {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("orphan's temporary directory %s not removed", dir)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
