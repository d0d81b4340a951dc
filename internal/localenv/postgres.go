package localenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres is wrapped by the error BinDir (and so StartPostgres and
// EnsurePersistentPostgres) returns when no PostgreSQL server binaries are
// installed.
var ErrNoPostgres = errors.New("no PostgreSQL server binaries found")

// BinDir finds the PostgreSQL server binaries (initdb, pg_ctl, postgres):
// $PODFLOW_PG_BIN when set, else the newest /usr/lib/postgresql/*/bin
// (Debian/Ubuntu), else the newest /usr/pgsql-*/bin (RHEL/Fedora), else the
// directory of pg_ctl on PATH. The error wraps ErrNoPostgres and says how to
// get them, or that DATABASE_URL can be set instead.
func BinDir() (string, error) {
	if d := os.Getenv("PODFLOW_PG_BIN"); d != "" {
		if err := checkBinDir(d); err != nil {
			return "", fmt.Errorf("localenv: PODFLOW_PG_BIN=%s: %w", d, err)
		}
		return filepath.Abs(d)
	}
	var candidates []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"} {
		m, _ := filepath.Glob(pattern)
		sort.SliceStable(m, func(i, j int) bool { return versionLess(versionOf(m[j]), versionOf(m[i])) })
		candidates = append(candidates, m...)
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	for _, c := range candidates {
		if checkBinDir(c) == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("localenv: %w (initdb, pg_ctl and postgres; looked in /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin and PATH): "+
		"install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; Fedora/RHEL: dnf install postgresql-server; macOS: brew install postgresql), "+
		"set PODFLOW_PG_BIN to its bin directory, or set DATABASE_URL to use an existing server", ErrNoPostgres)
}

func checkBinDir(dir string) error {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNoPostgres, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%w: %s is not an executable file", ErrNoPostgres, filepath.Join(dir, name))
		}
	}
	return nil
}

// versionOf extracts the version numbers from .../postgresql/15/bin or
// /usr/pgsql-9.6/bin.
func versionOf(binDir string) []int {
	base := filepath.Base(filepath.Dir(binDir))
	base = strings.TrimPrefix(base, "pgsql-")
	var v []int
	for _, part := range strings.Split(base, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			break
		}
		v = append(v, n)
	}
	return v
}

func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// Postgres is a PostgreSQL server started by StartPostgres.
type Postgres struct {
	Dir      string // data directory (also holds the unix socket and, by default, postgres.log)
	Port     int    // TCP port on 127.0.0.1
	URL      string // postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres?sslmode=disable
	Password string // of the superuser postgres, also in Dir/podflow.password

	bin          string
	runner       *pgRunner
	removeDir    bool          // Dir was made by StartPostgres: Stop removes it
	fromTemplate bool          // Dir is a copy of the cached template: its password is not its own
	migrated     bool          // Dir trusted local connections until this start locked it down
	watchdog     *exec.Cmd     // stops the server if this process dies without Stop
	logDone      chan struct{} // closed when the server's output pipe is drained

	mu      sync.Mutex
	stopped bool
}

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	// Dir is the data directory; initdb'd if it holds no cluster yet. Empty:
	// a new temporary directory, removed by Stop.
	Dir string
	// Port on 127.0.0.1; 0 picks a free port.
	Port int
	// Fsync false runs with fsync, synchronous_commit and full_page_writes
	// off (and initdb --no-sync): fast, for throwaway clusters only.
	Fsync bool
	// Log receives the server's output (written from another goroutine until
	// the server stops). Nil: appended to Dir/postgres.log.
	Log io.Writer
}

type pgStartConfig struct {
	PostgresOptions
	maxConnections int
	// watchdog: stop the server (and remove Dir if StartPostgres made it)
	// when this process exits without calling Stop.
	watchdog bool
}

// StartPostgres initdb's opts.Dir if it holds no cluster (superuser
// "postgres" with a random password, SCRAM-SHA-256 authentication for every
// connection, UTF8, C locale), starts the server with pg_ctl on
// 127.0.0.1:opts.Port (unix socket in Dir, max_connections 300) and waits
// until it accepts connections. A Dir made by an older podflow, whose
// pg_hba.conf trusts local connections, gets a password and loses its
// trust lines (see lockDown). As root, the server runs as OS user
// "postgres" and Dir is given to that user.
//
// The server is tied to this process: Stop it; if the process dies first, a
// small watchdog process stops it (and removes a temporary Dir) within about
// a second.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	return startPostgres(ctx, pgStartConfig{PostgresOptions: opts, maxConnections: 300, watchdog: true})
}

func startPostgres(ctx context.Context, cfg pgStartConfig) (_ *Postgres, err error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	r, err := newPGRunner()
	if err != nil {
		return nil, err
	}
	p := &Postgres{bin: bin, runner: r}
	if cfg.Dir == "" {
		if p.Dir, err = os.MkdirTemp("", "podflow-pg-"); err != nil {
			return nil, fmt.Errorf("localenv: create data directory: %w", err)
		}
		p.removeDir = true
	} else {
		if p.Dir, err = filepath.Abs(cfg.Dir); err != nil {
			return nil, fmt.Errorf("localenv: data directory: %w", err)
		}
		if err := os.MkdirAll(p.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("localenv: create data directory: %w", err)
		}
	}
	started := false
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if started {
			p.pgCtlStop(cctx, "immediate")
		}
		p.stopWatchdog()
		if p.removeDir {
			os.RemoveAll(p.Dir)
		}
	}()
	if err := r.checkReachable(p.Dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := p.initdb(ctx, cfg.Fsync); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("localenv: %w", err)
	}
	if cfg.watchdog {
		if err := p.startWatchdog(); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		port := cfg.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		started = true
		err = p.pgCtlStart(ctx, cfg, port)
		if err == nil {
			p.Port = port
			break
		}
		// Another process may have taken the free port between our probe and
		// the server's bind: try another one.
		if cfg.Port != 0 || attempt == 5 || !strings.Contains(err.Error(), "could not bind") && !strings.Contains(err.Error(), "could not create any TCP/IP sockets") {
			return nil, err
		}
	}
	recorded, err := readPassword(p.Dir)
	if err != nil {
		return nil, err
	}
	if err := waitAccepting(ctx, adminURL(p.Port, recorded), 30*time.Second); err != nil {
		return nil, fmt.Errorf("localenv: postgres in %s started but does not accept connections: %w%s", p.Dir, err, p.logTail(nil))
	}
	if p.Password, p.migrated, err = lockDown(ctx, p.Dir, p.Port, r, p.fromTemplate); err != nil {
		return nil, err
	}
	p.URL = adminURL(p.Port, p.Password)
	return p, nil
}

// initdb creates the cluster in a sibling directory and renames it to
// p.Dir (which must be empty), so that an interrupted initdb never leaves a
// half-made cluster behind.
func (p *Postgres) initdb(ctx context.Context, fsync bool) error {
	entries, err := os.ReadDir(p.Dir)
	if err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("localenv: data directory %s is not empty but holds no PostgreSQL cluster (no PG_VERSION); empty it or choose another", p.Dir)
	}
	tmp := p.Dir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil { // left by an interrupted initdb
		return fmt.Errorf("localenv: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("localenv: create initdb directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := p.runner.chown(tmp); err != nil {
		return err
	}
	// A throwaway cluster is a copy of a cached, freshly initdb'd one when
	// there is one: copying takes a fraction of initdb's seconds. The copy's
	// password is the template's; startPostgres replaces it once running.
	tpl := p.templateDir()
	if !fsync && p.runner.ownsPrivateDir(tpl) {
		if err := p.copyDir(ctx, tpl, tmp); err == nil {
			p.fromTemplate = true
		} else if err := resetDir(tmp, p.runner); err != nil {
			return err
		}
	}
	if !p.fromTemplate {
		if err := p.initdbWithPassword(ctx, tmp, fsync); err != nil {
			return err
		}
		if !fsync {
			p.saveTemplate(ctx, tmp, tpl)
		}
	}
	if err := os.Remove(p.Dir); err != nil {
		return fmt.Errorf("localenv: replace data directory: %w", err)
	}
	if err := os.Rename(tmp, p.Dir); err != nil {
		return fmt.Errorf("localenv: move initdb'd cluster into place: %w", err)
	}
	return nil
}

// templateDir is where initdb'd throwaway clusters are cached: one per
// server build and OS user, in the temporary directory (so gone after a
// reboot). Only a directory owned by the user the server runs as, and
// private to it, is used.
func (p *Postgres) templateDir() string {
	key := p.bin + "|scram" // templates of older podflows trusted local connections
	if fi, err := os.Stat(filepath.Join(p.bin, "postgres")); err == nil {
		key += fmt.Sprintf("|%d|%d", fi.Size(), fi.ModTime().UnixNano())
	}
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(os.TempDir(), fmt.Sprintf("podflow-pg-template-%d-%s", p.runner.uid, hex.EncodeToString(sum[:6])))
}

// saveTemplate caches the freshly initdb'd cluster src as tpl, best
// effort: copied aside, then renamed into place (the first of concurrent
// savers wins).
func (p *Postgres) saveTemplate(ctx context.Context, src, tpl string) {
	if _, err := os.Lstat(tpl); err == nil {
		return
	}
	staging, err := os.MkdirTemp(filepath.Dir(tpl), filepath.Base(tpl)+".tmp-")
	if err != nil {
		return
	}
	if p.runner.chown(staging) != nil || p.copyDir(ctx, src, staging) != nil || os.Rename(staging, tpl) != nil {
		os.RemoveAll(staging)
	}
}

// copyDir copies the contents of src into the existing directory dst, as
// the user the server runs as.
func (p *Postgres) copyDir(ctx context.Context, src, dst string) error {
	cmd := p.runner.command(ctx, "cp", "-a", src+"/.", dst+"/")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("localenv: cp -a %s %s: %w\n%s", src, dst, err, bytes.TrimSpace(out))
	}
	return nil
}

// resetDir makes dir an empty directory owned by the server's user.
func resetDir(dir string, r *pgRunner) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("localenv: %w", err)
	}
	return r.chown(dir)
}

// initdbWithPassword runs initdb in dir with a new random password for
// the superuser, which it records in dir/podflow.password, and podflow's
// pg_hba.conf (password needed on every connection).
func (p *Postgres) initdbWithPassword(ctx context.Context, dir string, fsync bool) error {
	password, err := newPassword()
	if err != nil {
		return err
	}
	// initdb reads the password from a file, which the server's OS user
	// must be able to open; a fresh one (O_EXCL, 0600) beside dir.
	pwFile, err := os.CreateTemp(filepath.Dir(dir), ".podflow-initdb-pw-")
	if err != nil {
		return fmt.Errorf("localenv: initdb password file: %w", err)
	}
	defer os.Remove(pwFile.Name())
	_, err = pwFile.WriteString(password + "\n")
	if cerr := pwFile.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("localenv: initdb password file: %w", err)
	}
	if err := p.runner.chown(pwFile.Name()); err != nil {
		return err
	}
	args := []string{"-D", dir, "-U", superuser, "--auth=scram-sha-256", "--pwfile=" + pwFile.Name(), "--encoding=UTF8", "--locale=C"}
	if !fsync {
		args = append(args, "--no-sync")
	}
	cmd := p.runner.command(ctx, filepath.Join(p.bin, "initdb"), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("localenv: initdb %s (as %s): %w\n%s", p.Dir, p.runner.username, err, bytes.TrimSpace(out))
	}
	if err := writePrivateFile(filepath.Join(dir, "pg_hba.conf"), []byte(hbaContents), p.runner); err != nil {
		return err
	}
	return writePrivateFile(filepath.Join(dir, passwordFile), []byte(password+"\n"), p.runner)
}

// maxSocketDir is the longest Dir that fits a unix socket path
// (Dir/.s.PGSQL.65535.lock) into sun_path.
const maxSocketDir = 107 - len("/.s.PGSQL.65535.lock")

func (p *Postgres) pgCtlStart(ctx context.Context, cfg pgStartConfig, port int) error {
	o := []string{"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "max_connections=" + strconv.Itoa(cfg.maxConnections)}
	if len(p.Dir) <= maxSocketDir {
		o = append(o, "-k", shellQuote(p.Dir))
	} else {
		o = append(o, "-k", "''") // no unix socket: its path would be too long
	}
	if !cfg.Fsync {
		o = append(o, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	args := []string{"start", "-D", p.Dir, "-w", "-t", "300", "-o", strings.Join(o, " ")}
	if cfg.Log == nil {
		args = append(args, "-l", filepath.Join(p.Dir, "postgres.log"))
	}
	cmd := p.runner.command(ctx, filepath.Join(p.bin, "pg_ctl"), args...)
	var out bytes.Buffer
	var tail *tailBuffer
	if cfg.Log == nil {
		cmd.Stdout, cmd.Stderr = &out, &out
	} else {
		// The server inherits pg_ctl's stdout and stderr. They must be a
		// pipe we drain ourselves: with an io.Writer, exec would wait for the
		// server to close them before pg_ctl's Wait returns.
		pr, pw, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("localenv: pipe: %w", err)
		}
		defer pw.Close()
		tail = &tailBuffer{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer pr.Close()
			io.Copy(io.MultiWriter(tail, errorless{cfg.Log}), pr)
		}()
		p.logDone = done
		cmd.Stdout, cmd.Stderr = pw, pw
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localenv: pg_ctl start: %w", err)
	}
	if f, ok := cmd.Stdout.(*os.File); ok {
		f.Close()
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("localenv: pg_ctl start -D %s (port %d, as %s): %w\n%s%s", p.Dir, port, p.runner.username, err,
			bytes.TrimSpace(out.Bytes()), p.logTail(tail))
	}
	return nil
}

// Stop stops the server (pg_ctl stop -m fast; -m immediate if that fails)
// and, if StartPostgres made Dir, removes it. Stopping a stopped server is a
// no-op.
func (p *Postgres) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	err := p.pgCtlStop(ctx, "fast")
	if err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if p.pgCtlStop(cctx, "immediate") == nil {
			err = nil
		}
		cancel()
	}
	if err != nil {
		return err
	}
	p.stopped = true
	p.stopWatchdog()
	if p.logDone != nil {
		select {
		case <-p.logDone:
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	if p.removeDir {
		if err := os.RemoveAll(p.Dir); err != nil {
			return fmt.Errorf("localenv: remove data directory: %w", err)
		}
	}
	return nil
}

func (p *Postgres) pgCtlStop(ctx context.Context, mode string) error {
	pid := postmasterPID(p.Dir)
	cmd := p.runner.command(ctx, filepath.Join(p.bin, "pg_ctl"), "stop", "-D", p.Dir, "-m", mode, "-w", "-t", "120")
	out, err := cmd.CombinedOutput()
	if err == nil {
		// pg_ctl returns when postmaster.pid is gone, a moment before the
		// postmaster exits: wait for that too.
		for deadline := time.Now().Add(5 * time.Second); pid != 0 && processAlive(pid) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	if _, serr := os.Stat(filepath.Join(p.Dir, "postmaster.pid")); errors.Is(serr, os.ErrNotExist) {
		return nil // not running
	}
	return fmt.Errorf("localenv: pg_ctl stop -m %s -D %s: %w\n%s", mode, p.Dir, err, bytes.TrimSpace(out))
}

// postmasterPID is the pid recorded in dir/postmaster.pid, or 0.
func postmasterPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

// watchdogScript stops the server when the process $1 is gone. kill -0 fails
// with EPERM when we run as postgres and the owner is root: /proc decides then.
const watchdogScript = `owner=$1 pgctl=$2 dir=$3 rmdir=$4
alive() { kill -0 "$owner" 2>/dev/null || [ -d "/proc/$owner" ]; }
while alive; do sleep 1; done
"$pgctl" stop -D "$dir" -m immediate -w -t 60 >/dev/null 2>&1
if [ "$rmdir" = 1 ]; then rm -rf "$dir"; fi
`

func (p *Postgres) startWatchdog() error {
	rm := "0"
	if p.removeDir {
		rm = "1"
	}
	cmd := p.runner.command(context.Background(), "/bin/sh", "-c", watchdogScript, "podflow-pg-watchdog",
		strconv.Itoa(os.Getpid()), filepath.Join(p.bin, "pg_ctl"), p.Dir, rm)
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localenv: start postgres watchdog: %w", err)
	}
	p.watchdog = cmd
	return nil
}

func (p *Postgres) stopWatchdog() {
	if p.watchdog == nil {
		return
	}
	p.watchdog.Process.Kill()
	p.watchdog.Wait()
	p.watchdog = nil
}

// logTail returns the end of the server log, for error messages.
func (p *Postgres) logTail(t *tailBuffer) string {
	var b []byte
	if t != nil {
		b = t.Bytes()
	} else if f, err := os.Open(filepath.Join(p.Dir, "postgres.log")); err == nil {
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.Size() > 2048 {
			f.Seek(fi.Size()-2048, io.SeekStart)
		}
		b, _ = io.ReadAll(f)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return ""
	}
	return "\nserver log (end):\n" + string(b)
}

// CreateDatabase creates database name on the server (connecting to p.URL,
// which is all it uses: &Postgres{URL: os.Getenv("DATABASE_URL")} works too)
// and returns p.URL with the database replaced by name.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", errors.New("localenv: CreateDatabase: empty database name")
	}
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		return "", fmt.Errorf("localenv: create database %s: connect: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("localenv: create database %s: %w", name, err)
	}
	return WithDatabase(p.URL, name)
}

// WithDatabase returns the connection string connString (a URL or a
// keyword/value string) with its database replaced by name.
func WithDatabase(connString, name string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", fmt.Errorf("localenv: parse database URL: %w", err)
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	// keyword/value: a later dbname wins.
	q := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(name)
	return strings.TrimSpace(connString) + " dbname='" + q + "'", nil
}

// waitAccepting connects to url until it succeeds, ctx is done or timeout
// passes.
func waitAccepting(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := ping(ctx, url, 5*time.Second)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ping connects to url once and runs a trivial query.
func ping(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localenv: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether 127.0.0.1:port can be listened on now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// pgEnv is our environment without PG* variables, in the C locale.
func pgEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > 4096 {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-4096:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// errorless hides write errors, so that a failing log writer does not stop
// the copy (the server would then get EPIPE).
type errorless struct{ w io.Writer }

func (e errorless) Write(b []byte) (int, error) {
	e.w.Write(b)
	return len(b), nil
}
