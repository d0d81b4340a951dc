package localenv

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

func TestBinDir(t *testing.T) {
	dir, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("BinDir: %s", dir)
	t.Setenv("PODFLOW_PG_BIN", t.TempDir())
	_, err = BinDir()
	if !errors.Is(err, ErrNoPostgres) || !strings.Contains(err.Error(), "PODFLOW_PG_BIN") {
		t.Fatalf("BinDir with an empty PODFLOW_PG_BIN: %v, want ErrNoPostgres naming PODFLOW_PG_BIN", err)
	}
}

func TestVersionOrder(t *testing.T) {
	if !versionLess(versionOf("/usr/lib/postgresql/9.6/bin"), versionOf("/usr/lib/postgresql/15/bin")) ||
		!versionLess(versionOf("/usr/lib/postgresql/15/bin"), versionOf("/usr/pgsql-16/bin")) {
		t.Fatal("version order wrong")
	}
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

// persistentHome returns a podflow home for a test and, at cleanup, stops
// its cluster and removes its data directory (which may be relocated under
// /var/lib/podflow when running as root).
func persistentHome(t *testing.T) string {
	home := t.TempDir()
	persistentCleanup(t, home)
	return home
}

// persistentCleanup stops the persistent cluster of home at cleanup and
// removes its data directory if relocated.
func persistentCleanup(t *testing.T, home string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		dir, _ := persistentDataDir(home, mustRunner(t), false)
		pid := 0
		if dir != "" {
			pid = postmasterPID(dir)
		}
		if _, err := StopPersistentPostgres(ctx, home); err != nil {
			t.Errorf("StopPersistentPostgres: %v", err)
		}
		if pid != 0 && processAlive(pid) {
			t.Errorf("persistent postgres pid %d still running after StopPersistentPostgres", pid)
		}
		if dir != "" && strings.HasPrefix(dir, relocatedBase+"/") {
			os.RemoveAll(dir)
		}
	})
}

func mustRunner(t *testing.T) *pgRunner {
	r, err := newPGRunner()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPersistentPostgres(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	home := persistentHome(t)

	if u, err := RecordedDatabaseURL(ctx, home); u != "" || err != nil {
		t.Fatalf("RecordedDatabaseURL before Ensure = %q, %v; want \"\", nil", u, err)
	}
	begin := time.Now()
	url1, err := EnsurePersistentPostgres(ctx, home, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first Ensure (initdb+start): %v; URL %s", time.Since(begin).Round(time.Millisecond), url1)
	if !strings.HasSuffix(url1, "/podflow?sslmode=disable") {
		t.Errorf("URL %s: want database podflow", url1)
	}
	begin = time.Now()
	url2, err := EnsurePersistentPostgres(ctx, home, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second Ensure (running): %v", time.Since(begin).Round(time.Millisecond))
	if url2 != url1 {
		t.Errorf("second Ensure: %s, first %s", url2, url1)
	}
	if got := queryString(t, ctx, url1, "SHOW fsync"); got != "on" {
		t.Errorf("persistent fsync = %s", got)
	}
	if got := queryString(t, ctx, url1, "SHOW max_connections"); got != "200" {
		t.Errorf("persistent max_connections = %s", got)
	}
	conn, err := pgx.Connect(ctx, url1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE history(run text); INSERT INTO history VALUES ('run-1')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if b, err := os.ReadFile(filepath.Join(home, "database_url")); err != nil || strings.TrimSpace(string(b)) != url1 {
		t.Errorf("database_url file: %q, %v", b, err)
	}
	if u, err := RecordedDatabaseURL(ctx, home); u != url1 || err != nil {
		t.Errorf("RecordedDatabaseURL = %q, %v; want %s", u, err, url1)
	}

	if stopped, err := StopPersistentPostgres(ctx, home); err != nil || !stopped {
		t.Fatalf("StopPersistentPostgres of a running cluster = %v, %v; want true, nil", stopped, err)
	}
	if stopped, err := StopPersistentPostgres(ctx, home); err != nil || stopped {
		t.Fatalf("StopPersistentPostgres of a stopped cluster = %v, %v; want false, nil", stopped, err)
	}
	if u, err := RecordedDatabaseURL(ctx, home); u != "" || !errors.Is(err, ErrNotRunning) {
		t.Errorf("RecordedDatabaseURL of a stopped server = %q, %v; want ErrNotRunning", u, err)
	}
	// A postmaster.pid left behind with a pid now used by another program
	// (as after a reboot) must not stop Ensure.
	dir, err := persistentDataDir(home, mustRunner(t), false)
	if err != nil || dir == "" {
		t.Fatalf("data dir: %q, %v", dir, err)
	}
	stale := fmt.Sprintf("%d\n%s\n1700000000\n%d\n%s\n127.0.0.1\n  1234  5678\nready   \n", os.Getpid(), dir, 1, dir)
	if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	begin = time.Now()
	url3, err := EnsurePersistentPostgres(ctx, home, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Ensure after Stop (restart): %v", time.Since(begin).Round(time.Millisecond))
	if url3 != url1 {
		t.Errorf("after restart the URL changed: %s, was %s (recorded port should be reused)", url3, url1)
	}
	if got := queryString(t, ctx, url3, "SELECT run FROM history"); got != "run-1" {
		t.Errorf("history after restart: %q", got)
	}
	if u, err := RecordedDatabaseURL(ctx, home); u != url1 || err != nil {
		t.Errorf("RecordedDatabaseURL after restart = %q, %v", u, err)
	}
}

func TestPersistentPostgresConcurrent(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	home := persistentHome(t)
	var wg sync.WaitGroup
	urls := make([]string, 3)
	errs := make([]error, 3)
	for i := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			urls[i], errs[i] = EnsurePersistentPostgres(ctx, home, nil)
		}()
	}
	wg.Wait()
	for i := range urls {
		if errs[i] != nil {
			t.Fatalf("Ensure %d: %v", i, errs[i])
		}
		if urls[i] != urls[0] {
			t.Errorf("Ensure %d: %s, Ensure 0: %s", i, urls[i], urls[0])
		}
	}
	if got := queryString(t, ctx, urls[0], "SELECT current_database()"); got != "podflow" {
		t.Errorf("current_database() = %q", got)
	}
}

func TestWithDatabase(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h:5/postgres?sslmode=disable": "postgres://u:p@h:5/x%20y?sslmode=disable",
		"postgresql://h":                "postgresql://h/x%20y",
		"host=h user=u dbname=postgres": "host=h user=u dbname=postgres dbname='x y'",
	} {
		got, err := WithDatabase(in, "x y")
		if err != nil || got != want {
			t.Errorf("WithDatabase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
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
