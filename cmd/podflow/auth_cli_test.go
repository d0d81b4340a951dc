package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
)

// authCLI runs podflow commands against one migrated test database.
type authCLI struct {
	t   *testing.T
	ctx context.Context
	url string
	st  *store.Store
}

func newAuthCLI(t *testing.T) *authCLI {
	t.Helper()
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	url := pgtest.NewMigratedDatabase(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &authCLI{t: t, ctx: ctx, url: url, st: st}
}

// run runs one command with stdin and returns its output (stdout and
// stderr, plus the error main would print) and exit code.
func (c *authCLI) run(stdin string, args ...string) (string, int) {
	c.t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append(args, "--database-url", c.url))
	err := cmd.ExecuteContext(c.ctx)
	if err != nil {
		out.WriteString(err.Error())
	}
	return out.String(), exitCode(err)
}

// events returns the audit log as `podflow events list -o json` prints it.
func (c *authCLI) events(args ...string) []store.EventLog {
	c.t.Helper()
	out, code := c.run("", append([]string{"events", "list", "-o", "json"}, args...)...)
	if code != 0 {
		c.t.Fatalf("events list: exit %d\n%s", code, out)
	}
	var events []store.EventLog
	if err := json.Unmarshal([]byte(out), &events); err != nil {
		c.t.Fatalf("events list -o json: %v\n%s", err, out)
	}
	return events
}

func (c *authCLI) authenticate(svc *auth.Service, bearer string) (auth.Principal, error) {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/dags", nil)
	r.Header.Set("Authorization", "Bearer "+bearer)
	return svc.Authenticate(c.ctx, r)
}

func eventNames(events []store.EventLog) []string {
	var names []string
	for _, e := range events {
		names = append(names, e.Event)
	}
	return names
}

func TestUsersCommands(t *testing.T) {
	c := newAuthCLI(t)
	if out, code := c.run("correct horse\n", "users", "create", "alice", "--role", "op", "--password-stdin"); code != 0 ||
		!strings.Contains(out, "created user alice with role op") {
		t.Fatalf("users create: exit %d\n%s", code, out)
	}
	for _, bad := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"correct horse\n", []string{"users", "create", "bob", "--role", "op"}, "--password-stdin"},
		{"correct horse\n", []string{"users", "create", "carol", "--role", "root", "--password-stdin"}, "unknown role"},
		{"Zq9x\n", []string{"users", "create", "dave", "--role", "op", "--password-stdin"}, "at least 8"},
		{"correct horse\n", []string{"users", "create", "api-key:x", "--role", "op", "--password-stdin"}, "only letters"},
		{"another horse\n", []string{"users", "create", "alice", "--role", "admin", "--password-stdin"}, "already exists"},
		{"", []string{"users", "set-role", "alice", "superuser"}, "unknown role"},
		{"", []string{"users", "set-role", "nobody", "op"}, "not found"},
		{"", []string{"users", "list", "-o", "xml"}, "want table, json or yaml"},
	} {
		out, code := c.run(bad.stdin, bad.args...)
		if code == 0 || !strings.Contains(out, bad.want) {
			t.Errorf("%v: exit %d, want an error with %q\n%s", bad.args, code, bad.want, out)
		}
		if strings.Contains(out, strings.TrimSpace(bad.stdin)) && bad.stdin != "" {
			t.Errorf("%v: the output repeats the password:\n%s", bad.args, out)
		}
	}

	out, code := c.run("", "users", "list", "-o", "json")
	var users []store.User
	if err := json.Unmarshal([]byte(out), &users); code != 0 || err != nil || len(users) != 1 ||
		users[0].Username != "alice" || users[0].Role != "op" {
		t.Fatalf("users list -o json: exit %d %v\n%s", code, err, out)
	}
	if strings.Contains(out, "$2") || strings.Contains(out, "password") {
		t.Errorf("users list shows the password hash:\n%s", out)
	}
	if out, _ := c.run("", "users", "list"); !strings.Contains(out, "USERNAME") || !strings.Contains(out, "alice") {
		t.Errorf("users list (table):\n%s", out)
	}

	svc, err := auth.New(c.ctx, c.st, auth.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := svc.Login(c.ctx, "alice", "correct horse", "127.0.0.1:1")
	if err != nil {
		t.Fatalf("login with the password given on stdin: %v", err)
	}
	if out, code := c.run("", "users", "set-role", "alice", "admin"); code != 0 || !strings.Contains(out, "role admin (was op)") {
		t.Fatalf("set-role: exit %d\n%s", code, out)
	}
	if p, err := c.authenticate(svc, tok); err != nil || p.Role != auth.RoleAdmin {
		t.Fatalf("token after set-role admin: %+v %v", p, err)
	}
	if out, code := c.run("", "users", "delete", "alice"); code != 0 {
		t.Fatalf("delete: exit %d\n%s", code, out)
	}
	if _, err := c.authenticate(svc, tok); err == nil {
		t.Fatal("the token of a deleted user still works")
	}
	if out, code := c.run("", "users", "delete", "alice"); code == 0 || !strings.Contains(out, "not found") {
		t.Fatalf("second delete: exit %d\n%s", code, out)
	}

	events := c.events()
	if got := strings.Join(eventNames(events), ","); got != "user_delete,user_set_role,user_create" {
		t.Fatalf("audit log (refused commands must record nothing): %s", got)
	}
	for _, e := range events {
		if !strings.HasPrefix(e.Actor, "cli:") || !strings.HasPrefix(e.Source, "cli@") {
			t.Errorf("%s: actor %q source %q", e.Event, e.Actor, e.Source)
		}
	}
	if !strings.Contains(string(events[1].Extra), `"old_role": "op"`) {
		t.Errorf("user_set_role extra: %s", events[1].Extra)
	}
}

func TestAPIKeysCommands(t *testing.T) {
	c := newAuthCLI(t)
	out, code := c.run("", "api-keys", "create", "--name", "ci", "--role", "op")
	key := regexp.MustCompile(`pfk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}`).FindString(out)
	if code != 0 || key == "" || !strings.Contains(out, "will not be shown again") {
		t.Fatalf("api-keys create: exit %d\n%s", code, out)
	}
	if out, code := c.run("", "api-keys", "create", "--name", "ci", "--role", "viewer"); code == 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("second key named ci: exit %d\n%s", code, out)
	}
	if out, code := c.run("", "api-keys", "create", "--name", "x", "--role", "god"); code == 0 || !strings.Contains(out, "unknown role") {
		t.Fatalf("role god: exit %d\n%s", code, out)
	}
	svc, err := auth.New(c.ctx, c.st, auth.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.authenticate(svc, key)
	if err != nil || p != (auth.Principal{Kind: auth.KindAPIKey, Name: "ci", Role: auth.RoleOp}) {
		t.Fatalf("the printed key: %+v %v", p, err)
	}

	prefix, secret := key[:len("pfk_")+12], key[len("pfk_")+13:] // the secret may hold '_' too
	for _, format := range []string{"table", "json", "yaml"} {
		out, code := c.run("", "api-keys", "list", "-o", format)
		if code != 0 || !strings.Contains(out, prefix) || !strings.Contains(out, "ci") {
			t.Errorf("api-keys list -o %s: exit %d\n%s", format, code, out)
		}
		if strings.Contains(out, secret) || strings.Contains(out, "hash") {
			t.Errorf("api-keys list -o %s shows the key or its hash:\n%s", format, out)
		}
	}
	out, _ = c.run("", "api-keys", "list", "-o", "json")
	var keys []store.APIKey
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 || keys[0].LastUsedAt == nil || keys[0].RevokedAt != nil {
		t.Fatalf("api-keys list -o json after one use: %v\n%s", err, out)
	}

	if out, code := c.run("", "api-keys", "revoke", "ci"); code != 0 || !strings.Contains(out, "revoked API key ci") {
		t.Fatalf("revoke: exit %d\n%s", code, out)
	}
	if _, err := c.authenticate(svc, key); err == nil {
		t.Fatal("a revoked key still works")
	}
	if out, code := c.run("", "api-keys", "revoke", "ci"); code == 0 || !strings.Contains(out, "not found") {
		t.Fatalf("second revoke: exit %d\n%s", code, out)
	}
	out, _ = c.run("", "api-keys", "list", "-o", "json")
	keys = nil
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 1 || keys[0].RevokedAt == nil {
		t.Fatalf("revoked key listed: %v\n%s", err, out)
	}
	events := c.events()
	if got := strings.Join(eventNames(events), ","); got != "api_key_revoke,api_key_create" {
		t.Fatalf("audit log: %s", got)
	}
	if strings.Contains(string(events[1].Extra), secret) {
		t.Errorf("the audit log holds the key: %s", events[1].Extra)
	}
}

// The CLI's existing changes (pause, unpause, trigger, clear, backfill)
// land in the audit log, which events list filters and pages.
func TestCLIChangesAreAudited(t *testing.T) {
	c := newAuthCLI(t)
	dags := t.TempDir()
	src := "dag_id: audited\nschedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n  - {task_id: a, operator: bash, bash_command: 'true'}\n"
	if err := os.WriteFile(filepath.Join(dags, "audited.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	df := []string{"--dags-folder", dags}
	steps := [][]string{
		{"dags", "pause", "audited"},
		{"dags", "unpause", "audited"},
		{"trigger", "audited", "--logical-date", "2026-03-01T00:00:00Z"},
		{"clear", "audited", "manual__2026-03-01T00:00:00Z", "--task", "a"},
		{"backfill", "audited", "--start", "2026-02-01", "--end", "2026-02-02"},
	}
	for _, s := range steps {
		if out, code := c.run("", append(s, df...)...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", s, code, out)
		}
	}
	if out, code := c.run("", append([]string{"dags", "pause", "nosuchdag"}, df...)...); code == 0 {
		t.Fatalf("pause of an unknown DAG: exit 0\n%s", out)
	}
	events := c.events("--dag-id", "audited")
	if got := strings.Join(eventNames(events), ","); got != "backfill,clear,trigger,unpause,pause" {
		t.Fatalf("audit log of audited: %s", got)
	}
	trig := c.events("--event", "trigger")
	if len(trig) != 1 || trig[0].RunID != "manual__2026-03-01T00:00:00Z" || trig[0].DagID != "audited" {
		t.Fatalf("trigger entry: %+v", trig)
	}
	if clear := events[1]; clear.TaskID != "a" || clear.RunID == "" {
		t.Errorf("clear entry: %+v", clear)
	}
	if !strings.Contains(string(events[0].Extra), `"runs": 2`) {
		t.Errorf("backfill entry: %s", events[0].Extra)
	}
	if got := c.events("--limit", "2"); len(got) != 2 || got[0].Event != "backfill" {
		t.Errorf("--limit 2: %v", eventNames(got))
	}
	out, code := c.run("", "events", "list", "--limit", "2")
	if code != 0 || !strings.Contains(out, "2 of 5 entries shown") || !strings.Contains(out, "OWNER") {
		t.Errorf("events list (table) --limit 2: exit %d\n%s", code, out)
	}
	if out, code := c.run("", "events", "list", "--limit", "0"); code != 2 {
		t.Errorf("--limit 0: exit %d\n%s", code, out)
	}
	if out, _ := c.run("", "events", "list", "-o", "yaml", "--event", "pause"); !strings.Contains(out, "event: pause") {
		t.Errorf("-o yaml:\n%s", out)
	}
}
