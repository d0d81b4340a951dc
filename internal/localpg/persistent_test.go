package localpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

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
