package localenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
		return "", fmt.Errorf("localenv: create podflow home: %w", err)
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
			return "", fmt.Errorf("localenv: start the persistent PostgreSQL of %s: %w", home, err)
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
		return "", fmt.Errorf("localenv: record database URL: %w", err)
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

// tightenHome closes home, its lock file and its recorded URL to other OS
// users and says what it changed. home is 0700, except as root when
// home/postgres is a data directory (not a symlink) that an older podflow
// made there: 0710 with group postgres then, so the server can reach it.
func tightenHome(home string, r *pgRunner) (changed []string, err error) {
	want, group := os.FileMode(0o700), -1
	if fi, err := os.Lstat(filepath.Join(home, homePGDir)); err == nil && fi.IsDir() && r.asOtherUser() {
		want, group = 0o710, r.gid
	}
	if group >= 0 {
		if err := os.Chown(home, -1, group); err != nil {
			return nil, fmt.Errorf("localenv: give %s to group postgres: %w", home, err)
		}
	}
	fi, err := os.Stat(home)
	if err != nil {
		return nil, fmt.Errorf("localenv: %w", err)
	}
	if fi.Mode().Perm() != want {
		if err := os.Chmod(home, want); err != nil {
			return nil, fmt.Errorf("localenv: close podflow home %s to other users: %w", home, err)
		}
		what := fmt.Sprintf("%s is now mode %#o (was %#o)", home, want, fi.Mode().Perm())
		if group >= 0 {
			what += " with group postgres, so that the server can reach its data directory inside"
		}
		changed = append(changed, what)
	}
	for _, name := range []string{homeURLFile, homePGLock} {
		path := filepath.Join(home, name)
		fi, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("localenv: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return nil, fmt.Errorf("localenv: close %s to other users: %w", path, err)
			}
			changed = append(changed, fmt.Sprintf("%s is now mode 0600 (was %#o)", name, fi.Mode().Perm()))
		}
	}
	return changed, nil
}

// tightenDataDir makes an existing data directory 0700 and owned by the
// server's OS user (PostgreSQL itself refuses a group- or world-writable
// one, but not one another user may list or a relocated one owned by root).
func tightenDataDir(dir string, r *pgRunner) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	if err := r.chown(dir); err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("localenv: close data directory %s to other users: %w", dir, err)
		}
	}
	return nil
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

// PersistentStatus describes the persistent local cluster of a home.
type PersistentStatus struct {
	Home    string
	DataDir string // "" when there is no cluster yet
	PID     int    // of the running server; 0 when it is not running
	Port    int    // the running server's port, else the recorded one
	URL     string // recorded in home/database_url (with its password), or ""
}

// Running reports whether the server is running.
func (s PersistentStatus) Running() bool { return s.PID != 0 }

// PersistentPostgresStatus reports on the persistent cluster of home (""
// means Home()) without changing anything: whether it exists, runs, where
// and on which port, and the URL recorded for it.
func PersistentPostgresStatus(home string) (PersistentStatus, error) {
	home, err := absHome(home)
	if err != nil {
		return PersistentStatus{}, err
	}
	st := PersistentStatus{Home: home}
	if b, err := os.ReadFile(filepath.Join(home, homeURLFile)); err == nil {
		st.URL = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("localenv: read recorded database URL: %w", err)
	}
	st.Port = recordedPort(home)
	r, err := newPGRunner()
	if err != nil {
		return st, err
	}
	if st.DataDir, err = persistentDataDir(home, r, false); err != nil || st.DataDir == "" {
		return st, err
	}
	if pid, port := postmasterStatus(st.DataDir); pid != 0 {
		st.PID, st.Port = pid, port
	}
	return st, nil
}

// postmasterStatus reads dir/postmaster.pid: the pid and port of the
// server running there, or 0, 0 when none is (no file, or a file left by a
// server that died and whose pid is gone or now another program's).
func postmasterStatus(dir string) (pid, port int) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, 0
	}
	lines := strings.Split(string(b), "\n")
	pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	if len(lines) >= 4 {
		port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	if !processAlive(pid) || !isPostgresProcess(pid) {
		return 0, 0
	}
	return pid, port
}

// isPostgresProcess reports whether pid runs postgres (true when that
// cannot be told, as without /proc).
func isPostgresProcess(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err != nil || strings.Contains(string(comm), "postgres") || strings.Contains(string(comm), "postmaster")
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
			ErrNotRunning, RedactURL(dbURL), path, err)
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
	// Others may pass through relocatedBase (postgres must), not list it.
	if err := os.MkdirAll(relocatedBase, 0o711); err != nil {
		return "", fmt.Errorf("localenv: data directory for %s: %w", home, err)
	}
	if err := os.Chmod(relocatedBase, 0o711); err != nil {
		return "", fmt.Errorf("localenv: data directory for %s: %w", home, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("localenv: data directory for %s: %w", home, err)
	}
	if err := r.chown(dir); err != nil {
		return "", err
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
	if !isPostgresProcess(pid) {
		// The pid belongs to another program now: the server would refuse
		// to start over this lock file.
		if err := os.Remove(pidFile); err != nil {
			return 0, false, fmt.Errorf("localenv: remove stale %s: %w", pidFile, err)
		}
		return 0, false, nil
	}
	password, err := readPassword(dir)
	if err != nil {
		return 0, false, err
	}
	if err := waitAccepting(ctx, adminURL(port, password), 15*time.Second); err != nil {
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
