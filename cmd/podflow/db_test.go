package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/localpg"
)

// Given a PODFLOW_HOME, `podflow db status` and `db stop` report on and
// stop the local PostgreSQL that standalone keeps there.
func TestDBStatusAndStop(t *testing.T) {
	home := persistentHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cli := func(args ...string) (string, int) {
		out, err := runCLI(t, ctx, args...)
		return out, exitCode(err)
	}

	out, code := cli("db", "status")
	if code != exitLocalDBMissing || !strings.Contains(out, "no local PostgreSQL under "+home) {
		t.Errorf("db status of an empty home: exit %d, want %d\n%s", code, exitLocalDBMissing, out)
	}

	// What `podflow standalone` does first without DATABASE_URL.
	dbURL, err := localpg.EnsurePersistentPostgres(ctx, home, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dbURL)
	password, _ := u.User.Password()
	st, err := localpg.PersistentPostgresStatus(home)
	if err != nil || !st.Running() {
		t.Fatalf("status after Ensure: %+v, %v", st, err)
	}
	out, code = cli("db", "status")
	for _, want := range []string{"running (pid ", st.DataDir, "port:           " + u.Port(), localpg.RedactURL(dbURL)} {
		if !strings.Contains(out, want) {
			t.Errorf("db status lacks %q:\n%s", want, out)
		}
	}
	if code != 0 || password == "" || strings.Contains(out, password) {
		t.Errorf("db status of a running server: exit %d, want 0, and the password masked:\n%s", code, out)
	}
	if out, code = cli("db", "status", "--database-url", "postgres://elsewhere/db"); !strings.Contains(out, "podflow commands use that database, not this one") {
		t.Errorf("db status with --database-url: exit %d, no note that another database is used:\n%s", code, out)
	}

	out, code = cli("db", "stop")
	if code != 0 || !strings.Contains(out, "stopped the local PostgreSQL under "+home) {
		t.Errorf("db stop: exit %d\n%s", code, out)
	}
	if _, err := runCLI(t, ctx, "db", "check"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("db check after db stop: %v, want the recorded server reported not running", err)
	}
	out, code = cli("db", "status")
	if code != exitLocalDBNotRunning || !strings.Contains(out, "not running") || !strings.Contains(out, st.DataDir) {
		t.Errorf("db status of a stopped server: exit %d, want %d\n%s", code, exitLocalDBNotRunning, out)
	}
	out, code = cli("db", "stop")
	if code != 0 || !strings.Contains(out, "is not running: nothing to stop") {
		t.Errorf("db stop of a stopped server: exit %d\n%s", code, out)
	}
}
