package localpg

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestHBATrusts(t *testing.T) {
	for _, tc := range []struct {
		hba  string
		want bool
	}{
		{hbaContents, false},
		{"local all all trust\n", true},
		{"host all all 127.0.0.1/32 trust\n", true},
		{"host all all 127.0.0.1 255.255.255.255 trust\n", true},
		{"# host all all 127.0.0.1/32 trust\nlocal all all scram-sha-256\n", false},
		{"local all all scram-sha-256 # not trust\n", false},
		{"local trust trust peer\n", false}, // a database and a user named trust
		{"", false},
	} {
		if got := hbaTrusts([]byte(tc.hba)); got != tc.want {
			t.Errorf("hbaTrusts(%q) = %v, want %v", tc.hba, got, tc.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://postgres:s3cret@127.0.0.1:5/podflow?sslmode=disable": "postgres://postgres:xxxxx@127.0.0.1:5/podflow?sslmode=disable",
		"postgres://postgres@127.0.0.1:5/podflow":                        "postgres://postgres@127.0.0.1:5/podflow",
		"host=h user=u password=s3cret dbname=d":                         "host=h user=u password=xxxxx dbname=d",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// withoutPassword returns a URL with its password removed.
func withoutPassword(t *testing.T, connURL string) string {
	t.Helper()
	u, err := url.Parse(connURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// assertRefused checks that the server refuses connString for want of
// the right password.
func assertRefused(t *testing.T, ctx context.Context, connString, what string) {
	t.Helper()
	err := ping(ctx, connString, 10*time.Second)
	if !IsAuthFailure(err) {
		t.Errorf("%s: %v; want the login refused (password authentication failed)", what, err)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %#o, want %#o", path, got, want)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// Given a throwaway cluster, when a client does not give the password,
// then the server refuses it, on TCP and on the unix socket alike; two
// clusters (the second copied from the cached template) have different
// passwords.
func TestThrowawayClusterNeedsPassword(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	p := startTestPostgres(t, PostgresOptions{})
	q := startTestPostgres(t, PostgresOptions{})
	if p.Password == "" || p.Password == q.Password {
		t.Errorf("passwords %q and %q: want two different, non-empty ones", p.Password, q.Password)
	}
	if got := queryString(t, ctx, p.URL, "SELECT 'ok'"); got != "ok" {
		t.Fatalf("with the password: %q", got)
	}
	assertRefused(t, ctx, withoutPassword(t, p.URL), "TCP without password")
	wrong := strings.Replace(p.URL, p.Password, q.Password, 1)
	assertRefused(t, ctx, wrong, "TCP with another cluster's password")
	assertRefused(t, ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres", p.Dir, p.Port), "unix socket without password")
	for _, c := range []*Postgres{p, q} {
		hba, err := os.ReadFile(filepath.Join(c.Dir, "pg_hba.conf"))
		if err != nil || hbaTrusts(hba) {
			t.Errorf("%s/pg_hba.conf trusts connections (%v):\n%s", c.Dir, err, hba)
		}
		assertMode(t, filepath.Join(c.Dir, passwordFile), 0o600)
		assertMode(t, c.Dir, 0o700)
	}
	if q.fromTemplate {
		if tpl, _ := readPassword(p.templateDir()); tpl == q.Password {
			t.Error("a cluster copied from the template kept the template's password")
		}
	}
	if os.Geteuid() == 0 {
		assertNobodyLockedOut(t, p.Port, p.Password, p.Dir, "")
	}
}

// Given a persistent cluster, then its home is 0700, database_url 0600,
// its data directory 0700 and owned by the server's user, and only the
// recorded URL (with the password) gets in.
func TestPersistentPostgresNeedsPassword(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	home := persistentHome(t)
	if err := os.Chmod(home, 0o755); err != nil { // as a home made before podflow set modes
		t.Fatal(err)
	}
	var notice bytes.Buffer
	dbURL, err := EnsurePersistentPostgres(ctx, home, &notice)
	if err != nil {
		t.Fatal(err)
	}
	if notice.Len() != 0 {
		t.Errorf("a new home got a lock-down notice: %s", notice.String())
	}
	u, _ := url.Parse(dbURL)
	password, ok := u.User.Password()
	if !ok || len(password) < 32 {
		t.Fatalf("URL %s: want a long password", RedactURL(dbURL))
	}
	assertLockedDown(t, ctx, home, dbURL)
}

// assertLockedDown checks a persistent home after EnsurePersistentPostgres
// returned dbURL.
func assertLockedDown(t *testing.T, ctx context.Context, home, dbURL string) {
	t.Helper()
	r := mustRunner(t)
	dir, err := persistentDataDir(home, r, false)
	if err != nil || dir == "" {
		t.Fatalf("data dir: %q, %v", dir, err)
	}
	inHome := dir == filepath.Join(home, homePGDir)
	if r.asOtherUser() && inHome {
		// An older podflow's data directory inside home: postgres passes by group.
		if st := assertMode(t, home, 0o710); int(st.Gid) != r.gid {
			t.Errorf("home %s has group %d, want postgres's %d", home, st.Gid, r.gid)
		}
	} else {
		assertMode(t, home, 0o700)
	}
	urlFile := filepath.Join(home, homeURLFile)
	assertMode(t, urlFile, 0o600)
	if b, err := os.ReadFile(urlFile); err != nil || strings.TrimSpace(string(b)) != dbURL {
		t.Errorf("database_url holds %q (%v), want the URL returned", b, err)
	}
	if st := assertMode(t, dir, 0o700); int(st.Uid) != r.uid {
		t.Errorf("data directory %s is owned by uid %d, want %d", dir, st.Uid, r.uid)
	}
	if hba, err := os.ReadFile(filepath.Join(dir, "pg_hba.conf")); err != nil || hbaTrusts(hba) {
		t.Errorf("pg_hba.conf trusts connections (%v):\n%s", err, hba)
	}
	if got := queryString(t, ctx, dbURL, "SELECT current_database()"); got != "podflow" {
		t.Errorf("with the recorded URL: %q", got)
	}
	assertRefused(t, ctx, withoutPassword(t, dbURL), "persistent cluster, TCP without password")
	if os.Geteuid() == 0 {
		u, _ := url.Parse(dbURL)
		port, _ := strconv.Atoi(u.Port())
		password, _ := u.User.Password()
		assertNobodyLockedOut(t, port, password, dir, urlFile)
	}
}

// assertNobodyLockedOut checks, as OS user nobody, that the server on port
// refuses a login without password (while the same psql with the password
// gets in: the port itself is reachable), that its unix socket in dataDir
// cannot be reached, and that urlFile (if any) cannot be read.
func assertNobodyLockedOut(t *testing.T, port int, password, dataDir, urlFile string) {
	t.Helper()
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("this test needs psql (apt-get install postgresql-client): %v", err)
	}
	asNobody := func(env []string, args ...string) (string, error) {
		cmd := exec.Command("setpriv", append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"}, args...)...)
		cmd.Dir = "/"
		cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LC_ALL=C"}, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	p := strconv.Itoa(port)
	// The attack of the security review: superuser, then a shell command.
	attack := []string{psql, "-X", "-w", "-h", "127.0.0.1", "-p", p, "-U", "postgres", "-d", "postgres", "-tA", "-c", "COPY (SELECT 1) TO PROGRAM 'cat >/dev/null'; SELECT 'in'"}
	if out, err := asNobody([]string{"PGPASSWORD=" + password}, attack...); err != nil || !strings.Contains(out, "in") {
		t.Fatalf("control: nobody with the password could not log in (%v): %s", err, out)
	}
	for _, env := range [][]string{nil, {"PGPASSWORD=wrong"}} {
		out, err := asNobody(env, attack...)
		if err == nil || !strings.Contains(out, "password") {
			t.Errorf("nobody, %v, over TCP: %v\n%s\nwant the login refused for want of the password", env, err, out)
		}
	}
	sock := append([]string{psql, "-X", "-w", "-h", dataDir}, attack[5:]...)
	if out, err := asNobody(nil, sock...); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("nobody over the unix socket in %s: %v\n%s\nwant Permission denied", dataDir, err, out)
	}
	if urlFile != "" {
		if out, err := asNobody(nil, "cat", urlFile); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("nobody read %s: %v\n%s", urlFile, err, out)
		}
	}
}

// oldHBA is what podflow wrote before passwords.
const oldHBA = "# written by podflow (internal/localenv)\n" +
	"local all all trust\n" +
	"host all all 127.0.0.1/32 trust\n" +
	"local replication all trust\n" +
	"host replication all 127.0.0.1/32 trust\n"

// makeOldHome builds a home as an older podflow left it: mode 0755, a
// cluster trusting local connections with a table in database podflow, a
// password-less URL in database_url (0644). running leaves its server
// running; relocated puts the data directory where root's would be.
func makeOldHome(t *testing.T, running, relocated bool) string {
	t.Helper()
	ctx := testContext(t)
	r := mustRunner(t)
	home, err := os.MkdirTemp("", "podflow-oldhome-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	persistentCleanup(t, home)
	var dir string
	if relocated {
		if dir, err = persistentDataDir(home, r, true); err != nil { // home is 0700: relocated as root
			t.Fatal(err)
		}
	} else {
		dir = filepath.Join(home, homePGDir)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.chown(dir); err != nil {
		t.Fatal(err)
	}
	bin, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	initdb := r.command(ctx, filepath.Join(bin, "initdb"), "-D", dir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "pg_hba.conf"), []byte(oldHBA), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.chown(filepath.Join(dir, "pg_hba.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o750); err != nil { // PostgreSQL accepts it; podflow tightens it
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &Postgres{Dir: dir, bin: bin, runner: r}
	if err := p.pgCtlStart(ctx, pgStartConfig{PostgresOptions: PostgresOptions{Dir: dir}, maxConnections: 50}, port); err != nil {
		t.Fatal(err)
	}
	oldURL := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := waitAccepting(ctx, oldURL, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ensureDatabase(ctx, oldURL, persistentDB); err != nil {
		t.Fatal(err)
	}
	dbURL, _ := WithDatabase(oldURL, persistentDB)
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE TABLE history AS SELECT 'run-1'::text AS run")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, homeURLFile), []byte(dbURL+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, homePGLock), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !running {
		if err := p.pgCtlStop(ctx, "fast"); err != nil {
			t.Fatal(err)
		}
	}
	return home
}

// Given a home made by an older podflow (trust, 0755, a URL file anyone may
// read), when EnsurePersistentPostgres finds it, running or stopped, then
// it is locked down, says so, and keeps its data.
func TestPersistentPostgresMigratesTrustingHome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		running, relocated bool
	}{
		{"running in home", true, false},
		{"stopped relocated", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			home := makeOldHome(t, tc.running, tc.relocated)
			if tc.running { // the finding, reproduced: no password needed
				old, _ := os.ReadFile(filepath.Join(home, homeURLFile))
				if err := ping(ctx, strings.TrimSpace(string(old)), 10*time.Second); err != nil {
					t.Fatalf("the old home's cluster does not admit a password-less login: %v", err)
				}
			}
			var notice bytes.Buffer
			dbURL, err := EnsurePersistentPostgres(ctx, home, &notice)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{home, `"trust"`, "asks for a password", "database_url is now mode 0600 (was 0644)"} {
				if !strings.Contains(notice.String(), want) {
					t.Errorf("notice lacks %q:\n%s", want, notice.String())
				}
			}
			t.Logf("notice: %s", notice.String())
			if got := queryString(t, ctx, dbURL, "SELECT run FROM history"); got != "run-1" {
				t.Errorf("data after the migration: %q", got)
			}
			assertLockedDown(t, ctx, home, dbURL)

			notice.Reset()
			again, err := EnsurePersistentPostgres(ctx, home, &notice)
			if err != nil || again != dbURL || notice.Len() != 0 {
				t.Errorf("second Ensure = %s, %v, notice %q; want the same URL and no notice", RedactURL(again), err, notice.String())
			}
		})
	}
}
