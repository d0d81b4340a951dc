package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files under the podflow home.
const (
	homePGDir     = "postgres"      // data directory (or a symlink to it)
	homePGLock    = "postgres.lock" // serializes Ensure/Stop across processes
	homeURLFile   = "database_url"  // the URL of database "podflow"
	persistentDB  = "podflow"
	relocatedBase = "/var/lib/podflow"
)

// ErrNotRunning is wrapped by RecordedDatabaseURL's error when a URL is
// recorded but its server does not answer.
var ErrNotRunning = errors.New("the local PostgreSQL recorded by podflow is not running")

// EnsurePersistentPostgres makes sure the persistent local cluster of home
// ("" means Home()) is running and returns the URL of its database
// "podflow", which it also records in home/database_url. The cluster lives
// in home/postgres: initdb'd on first use, started with pg_ctl if not
// running (on the port recorded before if that is free, else a free one),
// with default durability and max_connections 200. It keeps running after
// this process exits; StopPersistentPostgres stops it. Concurrent calls,
// from goroutines or processes, are serialized by a lock file under home.
//
// Only the OS user who owns home can log in: home is mode 0700, the URL
// (with the superuser's password) is in database_url, mode 0600, and the
// server asks every connection for that password. A home made by an older
// podflow (mode 0755, a cluster trusting local connections) is locked down
// the same way, and a sentence saying so is written to notice (nil: none).
//
// As root the server runs as OS user postgres, which must be able to reach
// the data directory: the data directory is /var/lib/podflow/postgres-HASH
// (mode 0700, owned by postgres) and home/postgres is a symlink to it. A
// data directory that an older podflow put inside home keeps its place:
// home is then mode 0710 with group postgres, so that OS user can pass.
func EnsurePersistentPostgres(ctx context.Context, home string, notice io.Writer) (string, error) {
	home, err := absHome(home)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return "", fmt.Errorf("localpg: create podflow home: %w", err)
	}
	r, err := newPGRunner()
	if err != nil {
		return "", err
	}
	_, err = os.Lstat(filepath.Join(home, homePGDir))
	hadCluster := err == nil
	tightened, err := tightenHome(home, r)
	if err != nil {
		return "", err
	}
	if !hadCluster {
		tightened = nil // nothing was exposed: no need to tell
	}
	unlock, err := lockFile(ctx, filepath.Join(home, homePGLock))
	if err != nil {
		return "", err
	}
	defer unlock()

	dir, err := persistentDataDir(home, r, true)
	if err != nil {
		return "", err
	}
	if err := tightenDataDir(dir, r); err != nil {
		return "", err
	}
	port, running, err := runningPort(ctx, dir)
	if err != nil {
		return "", err
	}
	var password string
	var migrated bool
	if running {
		if password, migrated, err = lockDown(ctx, dir, port, r, false); err != nil {
			return "", err
		}
	} else {
		want := recordedPort(home)
		if want != 0 && !portFree(want) {
			want = 0
		}
		cfg := pgStartConfig{PostgresOptions: PostgresOptions{Dir: dir, Port: want, Fsync: true}, maxConnections: 200}
		p, err := startPostgres(ctx, cfg)
		if err != nil && want != 0 && strings.Contains(err.Error(), "could not bind") {
			cfg.Port = 0 // taken since we looked: any free port
			p, err = startPostgres(ctx, cfg)
		}
		if err != nil {
			return "", fmt.Errorf("localpg: start the persistent PostgreSQL of %s: %w", home, err)
		}
		port, password, migrated = p.Port, p.Password, p.migrated
	}
	admin := adminURL(port, password)
	if err := ensureDatabase(ctx, admin, persistentDB); err != nil {
		return "", err
	}
	dbURL, err := WithDatabase(admin, persistentDB)
	if err != nil {
		return "", err
	}
	urlFile := filepath.Join(home, homeURLFile)
	if err := writeFileAtomic(urlFile, []byte(dbURL+"\n")); err != nil {
		return "", fmt.Errorf("localpg: record database URL: %w", err)
	}
	if (migrated || len(tightened) > 0) && notice != nil {
		fmt.Fprintln(notice, lockDownNotice(home, urlFile, migrated, tightened))
	}
	return dbURL, nil
}

// lockDownNotice tells the user what EnsurePersistentPostgres changed in a
// home made by an older podflow.
func lockDownNotice(home, urlFile string, migrated bool, tightened []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "podflow: secured the local PostgreSQL under %s:", home)
	if migrated {
		fmt.Fprintf(&b, " it let every local user in as superuser (pg_hba.conf \"trust\"); it now asks for a password (SCRAM-SHA-256), "+
			"recorded in %s — a URL copied from that file before now has no password and must be copied again;", urlFile)
	}
	if len(tightened) > 0 {
		fmt.Fprintf(&b, " %s.", strings.Join(tightened, ", "))
	} else {
		b.WriteString(".")
	}
	return strings.Replace(b.String(), ";.", ".", 1)
}

// StopPersistentPostgres stops the persistent cluster of home ("" means
// Home()) if it is running (pg_ctl stop -m fast) and reports whether it
// was. The recorded URL stays; EnsurePersistentPostgres starts the cluster
// again with its data.
func StopPersistentPostgres(ctx context.Context, home string) (stopped bool, err error) {
	home, err = absHome(home)
	if err != nil {
		return false, err
	}
	if _, err := os.Stat(home); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	unlock, err := lockFile(ctx, filepath.Join(home, homePGLock))
	if err != nil {
		return false, err
	}
	defer unlock()
	r, err := newPGRunner()
	if err != nil {
		return false, err
	}
	dir, err := persistentDataDir(home, r, false)
	if err != nil || dir == "" {
		return false, err
	}
	if pid, _ := postmasterStatus(dir); pid == 0 {
		return false, nil
	}
	bin, err := BinDir()
	if err != nil {
		return false, err
	}
	p := &Postgres{Dir: dir, bin: bin, runner: r}
	if err := p.pgCtlStop(ctx, "fast"); err != nil {
		return false, err
	}
	return true, nil
}

// runningPort reads dir/postmaster.pid and reports the port of the server
// running there, waiting a little for one that is still starting up. A
// postmaster.pid left by a server that died (its pid now absent or used by
// another program, as after a reboot) is removed.
func runningPort(ctx context.Context, dir string) (int, bool, error) {
	pidFile := filepath.Join(dir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("localpg: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, false, nil // being written or truncated: let pg_ctl decide
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, _ := strconv.Atoi(strings.TrimSpace(lines[3]))
	if !processAlive(pid) {
		return 0, false, nil // pg_ctl start handles this stale file
	}
	if !isPostgresProcess(pid) {
		// The pid belongs to another program now: the server would refuse
		// to start over this lock file.
		if err := os.Remove(pidFile); err != nil {
			return 0, false, fmt.Errorf("localpg: remove stale %s: %w", pidFile, err)
		}
		return 0, false, nil
	}
	password, err := readPassword(dir)
	if err != nil {
		return 0, false, err
	}
	if err := waitAccepting(ctx, adminURL(port, password), 15*time.Second); err != nil {
		return 0, false, fmt.Errorf("localpg: postgres (pid %d) in %s is running but does not accept connections on 127.0.0.1:%d: %w; see %s",
			pid, dir, port, err, filepath.Join(dir, "postgres.log"))
	}
	return port, true, nil
}

// recordedPort is the port of the URL recorded in home, or 0.
func recordedPort(home string) int {
	b, err := os.ReadFile(filepath.Join(home, homeURLFile))
	if err != nil {
		return 0
	}
	u, err := url.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	port, _ := strconv.Atoi(u.Port())
	return port
}

// writeFileAtomic writes path, mode 0600 (the recorded URL holds a
// password).
func writeFileAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	os.Remove(tmp) // left by a crash, perhaps with a wider mode
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
