package localenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Home returns podflow's home directory: $PODFLOW_HOME, or ~/.podflow.
func Home() string {
	if h := os.Getenv("PODFLOW_HOME"); h != "" {
		return h
	}
	if d, err := os.UserHomeDir(); err == nil && d != "" {
		return filepath.Join(d, ".podflow")
	}
	return ".podflow"
}

// EnsurePersistentPostgres makes sure the persistent local cluster of home
// ("" means Home()) is running and returns the URL of its database
// "podflow", which it also records in home/database_url. The cluster lives
// in home/postgres: initdb'd on first use, started with pg_ctl if not
// running (on the port recorded before if that is free, else a free one),
// with default durability and max_connections 200. It keeps running after
// this process exits; StopPersistentPostgres stops it. Concurrent calls,
// from goroutines or processes, are serialized by a lock file under home.
//
// As root the server runs as OS user postgres, which must be able to reach
// the data directory; when home is not reachable by it (root's home is
// usually mode 0700), the data directory is /var/lib/podflow/postgres-HASH
// and home/postgres is a symlink to it.
func EnsurePersistentPostgres(ctx context.Context, home string) (string, error) {
	home, err := absHome(home)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		return "", fmt.Errorf("localenv: create podflow home: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(home, homePGLock))
	if err != nil {
		return "", err
	}
	defer unlock()

	r, err := newPGRunner()
	if err != nil {
		return "", err
	}
	dir, err := persistentDataDir(home, r, true)
	if err != nil {
		return "", err
	}
	port, running, err := runningPort(ctx, dir)
	if err != nil {
		return "", err
	}
	if !running {
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
			return "", fmt.Errorf("localenv: start the persistent PostgreSQL of %s: %w", home, err)
		}
		port = p.Port
	}
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := ensureDatabase(ctx, admin, persistentDB); err != nil {
		return "", err
	}
	dbURL, err := WithDatabase(admin, persistentDB)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(home, homeURLFile), []byte(dbURL+"\n")); err != nil {
		return "", fmt.Errorf("localenv: record database URL: %w", err)
	}
	return dbURL, nil
}

// StopPersistentPostgres stops the persistent cluster of home ("" means
// Home()) if it is running (pg_ctl stop -m fast). The recorded URL stays;
// EnsurePersistentPostgres starts the cluster again with its data.
func StopPersistentPostgres(ctx context.Context, home string) error {
	home, err := absHome(home)
	if err != nil {
		return err
	}
	if _, err := os.Stat(home); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	unlock, err := lockFile(ctx, filepath.Join(home, homePGLock))
	if err != nil {
		return err
	}
	defer unlock()
	r, err := newPGRunner()
	if err != nil {
		return err
	}
	dir, err := persistentDataDir(home, r, false)
	if err != nil || dir == "" {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	bin, err := BinDir()
	if err != nil {
		return err
	}
	p := &Postgres{Dir: dir, bin: bin, runner: r}
	return p.pgCtlStop(ctx, "fast")
}

// RecordedDatabaseURL returns the URL recorded in home/database_url ("" home
// means Home()) if its server accepts a connection now. It returns "" and
// no error when no URL is recorded, and an error wrapping ErrNotRunning
// when one is recorded but its server does not answer.
func RecordedDatabaseURL(ctx context.Context, home string) (string, error) {
	home, err := absHome(home)
	if err != nil {
		return "", err
	}
	path := filepath.Join(home, homeURLFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("localenv: read recorded database URL: %w", err)
	}
	dbURL := strings.TrimSpace(string(b))
	if dbURL == "" {
		return "", nil
	}
	if err := ping(ctx, dbURL, 2*time.Second); err != nil {
		return "", fmt.Errorf("localenv: %w: %s (recorded in %s) does not answer: %v; start it with `podflow standalone`, or set DATABASE_URL",
			ErrNotRunning, dbURL, path, err)
	}
	return dbURL, nil
}

func absHome(home string) (string, error) {
	if home == "" {
		home = Home()
	}
	h, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("localenv: podflow home %q: %w", home, err)
	}
	return h, nil
}

// persistentDataDir resolves home/postgres. When it does not exist yet and
// create is set, it is made: a directory, or, when the OS user running the
// server cannot reach home, a symlink to a directory under
// /var/lib/podflow. Without create, a missing one yields "".
func persistentDataDir(home string, r *pgRunner, create bool) (string, error) {
	link := filepath.Join(home, homePGDir)
	fi, err := os.Lstat(link)
	switch {
	case err == nil && fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(link)
		if err != nil {
			return "", fmt.Errorf("localenv: %w", err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(home, target)
		}
		return target, nil
	case err == nil:
		return link, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("localenv: %w", err)
	case !create:
		return "", nil
	}
	if r.checkReachable(link) == nil {
		return link, nil
	}
	sum := sha256.Sum256([]byte(home))
	dir := filepath.Join(relocatedBase, "postgres-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(relocatedBase, 0o755); err != nil {
		return "", fmt.Errorf("localenv: data directory for %s: %w", home, err)
	}
	if err := os.Chmod(relocatedBase, 0o755); err != nil {
		return "", fmt.Errorf("localenv: data directory for %s: %w", home, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("localenv: data directory for %s: %w", home, err)
	}
	if err := os.Symlink(dir, link); err != nil {
		return "", fmt.Errorf("localenv: data directory for %s: %w", home, err)
	}
	return dir, nil
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
		return 0, false, fmt.Errorf("localenv: %w", err)
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
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && !strings.Contains(string(comm), "postgres") && !strings.Contains(string(comm), "postmaster") {
		// The pid belongs to another program now: the server would refuse
		// to start over this lock file.
		if err := os.Remove(pidFile); err != nil {
			return 0, false, fmt.Errorf("localenv: remove stale %s: %w", pidFile, err)
		}
		return 0, false, nil
	}
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := waitAccepting(ctx, admin, 15*time.Second); err != nil {
		return 0, false, fmt.Errorf("localenv: postgres (pid %d) in %s is running but does not accept connections on 127.0.0.1:%d: %w; see %s",
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

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("localenv: connect to local postgres: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("localenv: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // duplicate_database
		return fmt.Errorf("localenv: create database %s: %w", name, err)
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
