package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/secrets"
	"github.com/podflow/podflow/operators/builtin"
)

// secretsBundle is a database and DAGs folder with a secret key in the
// environment, and the CLI bound to them.
type secretsBundle struct {
	*flowtest.Bundle
	t   *testing.T
	ctx context.Context
}

func newSecretsBundle(t *testing.T, keySpec string) *secretsBundle {
	t.Setenv("PODFLOW_SECRET_KEY", keySpec)
	b := flowtest.New(t, builtin.Registry(builtin.Deps{}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return &secretsBundle{Bundle: b, t: t, ctx: ctx}
}

// cli runs podflow against the bundle; out includes the error main prints.
func (b *secretsBundle) cli(args ...string) (string, int) {
	b.t.Helper()
	out, err := runCLI(b.t, b.ctx, append(args, "--database-url", b.URL, "--dags-folder", b.Dir)...)
	if err != nil {
		out += err.Error()
	}
	return out, exitCode(err)
}

func (b *secretsBundle) mustCLI(args ...string) string {
	b.t.Helper()
	out, code := b.cli(args...)
	if code != 0 {
		b.t.Fatalf("podflow %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// rawDump is every row of every table of the test's schema as text: what
// someone with SELECT on the database sees.
func (b *secretsBundle) rawDump() string {
	b.t.Helper()
	conn, err := pgx.Connect(b.ctx, b.URL)
	if err != nil {
		b.t.Fatal(err)
	}
	defer conn.Close(b.ctx)
	rows, err := conn.Query(b.ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		b.t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 10 {
		b.t.Fatalf("tables %v: %v", tables, err)
	}
	var all strings.Builder
	for _, tbl := range tables {
		var s *string
		if err := conn.QueryRow(b.ctx, `SELECT string_agg(x::text, E'\n') FROM `+pgx.Identifier{tbl}.Sanitize()+` x`).Scan(&s); err != nil {
			b.t.Fatalf("dump %s: %v", tbl, err)
		}
		if s != nil {
			all.WriteString(*s + "\n")
		}
	}
	return all.String()
}

// Given a connection whose password and a variable api_token are in the
// database, when a bash task prints them raw, base64-, URL- and
// JSON-encoded and then fails, then the stored log, `podflow logs`, the
// task's error and the rendered fields show *** and no table holds any of
// them in clear.
func TestSecretsAreMaskedEverywhereAndEncryptedAtRest(t *testing.T) {
	key, err := secrets.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	b := newSecretsBundle(t, key)
	const password = "Sup3r!S3cret@wh"
	const token = "tok-9f8e7d6c5b4a"
	b.mustCLI("connections", "add", "wh", "--conn-uri", "postgres://loader:"+url.QueryEscape(password)+"@db.example:5432/dw?sslmode=require")
	b.mustCLI("variables", "set", "api_token", token)
	b.mustCLI("variables", "set", "bucket", "public-bucket-name")
	b.DAG("leaky", `dag_id: leaky
tasks:
  - task_id: leak
    operator: bash
    bash_command: |
      P='{{ conn.wh.password }}'; T='{{ var.value.api_token }}'
      echo "host={{ conn.wh.host }}:{{ conn.wh.port }} db={{ conn.wh.schema }} ssl={{ conn.wh.extra_dejson.sslmode }} bucket={{ var.value.bucket }}"
      echo "password=$P token=$T"
      printf '%s' "$P" | base64
      printf '%s' "$T" | base64
      printf '%s\n' "$P" | sed 's/!/%21/g; s/@/%40/g'
      echo "{\"pw\": \"$P\"}"
      echo "giving up with $P"
      exit 3
`)
	startStandalone(t, "--database-url", b.URL, "--dags-folder", b.Dir, "--workers", "2")
	out, code := b.cli("trigger", "leaky", "--wait")
	if code != 1 {
		t.Fatalf("trigger --wait of a failing run: exit %d\n%s", code, out)
	}
	runID := regexp.MustCompile(`triggered leaky run (\S+)`).FindStringSubmatch(out)[1]

	forms := map[string]string{
		"password": password, "token": token,
		"base64 password": base64.StdEncoding.EncodeToString([]byte(password)),
		"base64 token":    base64.StdEncoding.EncodeToString([]byte(token)),
		"URL password":    url.QueryEscape(password),
	}
	leaks := func(where, text string) {
		t.Helper()
		for name, f := range forms {
			if strings.Contains(text, f) {
				t.Errorf("%s shows the %s %q:\n%s", where, name, f, text)
			}
		}
	}
	logs, _ := b.cli("logs", "leaky", runID, "leak")
	leaks("podflow logs", logs)
	if n := strings.Count(logs, secrets.Masked); n < 7 {
		t.Errorf("podflow logs has %d ***, want the 7 printed secrets masked:\n%s", n, logs)
	}
	for _, want := range []string{"host=db.example:5432 db=dw ssl=require bucket=public-bucket-name", `{"pw": "***"}`, "exit code 3"} {
		if !strings.Contains(logs, want) {
			t.Errorf("podflow logs lacks %q:\n%s", want, logs)
		}
	}
	var errText string
	if err := b.Store.Pool.QueryRow(b.ctx, `SELECT error FROM task_instances WHERE task_id = 'leak'`).Scan(&errText); err != nil {
		t.Fatal(err)
	}
	leaks("the task's error", errText)
	if !strings.Contains(errText, "giving up with ***") {
		t.Errorf("error %q: want the output tail, masked", errText)
	}
	rendered, _ := b.cli("tasks", "render", "leaky", runID, "leak")
	leaks("tasks render", rendered)
	if !strings.Contains(rendered, "P='***'; T='***'") {
		t.Errorf("rendered bash_command:\n%s", rendered)
	}
	list, _ := b.cli("variables", "list")
	leaks("variables list", list)
	get, _ := b.cli("connections", "get", "wh", "-o", "json")
	leaks("connections get", get)
	if !strings.Contains(get, `"password": "***"`) || !strings.Contains(get, "db.example") {
		t.Errorf("connections get:\n%s", get)
	}
	dump := b.rawDump()
	leaks("a SELECT of every table", dump)
	if !strings.Contains(dump, "pf1:k1:") || !strings.Contains(dump, "giving up with ***") {
		t.Errorf("the raw tables hold neither ciphertext nor the masked log: is the dump complete?")
	}
	// Asked for explicitly, the CLI reveals them (as airflow connections get).
	if got := strings.TrimSpace(b.mustCLI("variables", "get", "api_token")); got != token {
		t.Errorf("variables get api_token = %q", got)
	}
	if got := b.mustCLI("connections", "get", "wh", "--reveal", "-o", "json"); !strings.Contains(got, password) {
		t.Errorf("connections get --reveal:\n%s", got)
	}
}

// Given rows written under one key, a process with another key under the
// same id, or no key, fails naming the connection, and rotation changes
// nothing.
func TestWrongOrMissingKeyNamesTheConnectionAndChangesNothing(t *testing.T) {
	right, _ := secrets.GenerateKey("k1")
	wrong, _ := secrets.GenerateKey("k1")
	b := newSecretsBundle(t, right)
	b.mustCLI("connections", "add", "warehouse", "--conn-type", "postgres", "--conn-host", "h", "--conn-password", "pw-123456")
	b.mustCLI("variables", "set", "note", "plain but encrypted")
	before := b.rawDump()

	t.Setenv("PODFLOW_SECRET_KEY", wrong)
	out, code := b.cli("connections", "get", "warehouse")
	if code == 0 || !strings.Contains(out, `connection "warehouse"`) || !strings.Contains(out, "does not open it") {
		t.Errorf("get with the wrong key: exit %d\n%s", code, out)
	}
	out, code = b.cli("rotate-secret-key")
	if code != 1 || !strings.Contains(out, "nothing re-encrypted") || !strings.Contains(out, `variable "note" cannot be decrypted`) {
		t.Errorf("rotate with the wrong key: exit %d\n%s", code, out)
	}
	t.Setenv("PODFLOW_SECRET_KEY", "")
	out, code = b.cli("connections", "get", "warehouse")
	if code == 0 || !strings.Contains(out, `connection "warehouse"`) || !strings.Contains(out, "no secret key configured") {
		t.Errorf("get without a key: exit %d\n%s", code, out)
	}
	out, code = b.cli("variables", "set", "db_password", "x-123456")
	if code == 0 || !strings.Contains(out, `variable "db_password" is secret`) {
		t.Errorf("a secret variable without a key: exit %d\n%s", code, out)
	}
	if after := b.rawDump(); after != before {
		t.Errorf("refused operations changed the tables")
	}
}

// Given rows under key "old" and a scheduler holding "new,old", when
// rotate-secret-key runs while the scheduler runs tasks that use them, every
// run succeeds, every row ends under "new", and processes holding only
// "new" read everything.
func TestRotateSecretKeyWhileASchedulerRuns(t *testing.T) {
	oldKey, _ := secrets.GenerateKey("old")
	newKey, _ := secrets.GenerateKey("new")
	b := newSecretsBundle(t, oldKey)
	b.mustCLI("connections", "add", "wh", "--conn-uri", "postgres://u:rotating-pass-1@db:5432/dw")
	b.mustCLI("variables", "set", "api_key", "rotating-key-2", "--description", "d")
	// The task checks the values by their digests, so neither sits in the DAG.
	b.DAG("uses", `dag_id: uses
tasks:
  - task_id: check
    operator: bash
    bash_command: |
      sleep 0.3
      printf '%s' '{{ conn.wh.password }}' | sha256sum | grep -q `+sha("rotating-pass-1")+`
      printf '%s' '{{ var.value.api_key }}' | sha256sum | grep -q `+sha("rotating-key-2")+`
`)
	t.Setenv("PODFLOW_SECRET_KEY", newKey+","+oldKey)
	stop := startStandalone(t, "--database-url", b.URL, "--dags-folder", b.Dir, "--workers", "4")
	done := make(chan string, 1)
	go func() {
		var outs strings.Builder
		for i := 0; i < 3; i++ {
			out, code := b.cli("trigger", "uses", "--wait")
			if code != 0 {
				outs.WriteString(out)
			}
		}
		done <- outs.String()
	}()
	out := b.mustCLI("rotate-secret-key")
	if !strings.Contains(out, "re-encrypted 1 variables and 1 connections under key new") || !strings.Contains(out, "remove it") {
		t.Errorf("rotate: %s", out)
	}
	if failed := <-done; failed != "" {
		t.Errorf("runs during the rotation failed:\n%s", failed)
	}
	dump := b.rawDump()
	if strings.Contains(dump, "pf1:old:") || strings.Count(dump, "pf1:new:") != 3 {
		t.Errorf("rows not all under the new key:\n%s", dump)
	}
	stop()
	t.Setenv("PODFLOW_SECRET_KEY", newKey) // the old key is gone
	if got := strings.TrimSpace(b.mustCLI("variables", "get", "api_key")); got != "rotating-key-2" {
		t.Errorf("variables get with only the new key = %q", got)
	}
	startStandalone(t, "--database-url", b.URL, "--dags-folder", b.Dir, "--workers", "2")
	b.mustCLI("trigger", "uses", "--wait")
	if out := b.mustCLI("rotate-secret-key"); !strings.Contains(out, "re-encrypted 0 variables and 0 connections") {
		t.Errorf("a second rotation: %s", out)
	}
}

func TestVariablesAndConnectionsImportExport(t *testing.T) {
	key, _ := secrets.GenerateKey("")
	b := newSecretsBundle(t, key)
	dir := t.TempDir()
	vars := filepath.Join(dir, "vars.json")
	if err := os.WriteFile(vars, []byte(`{"bucket": "b1", "cfg": {"region": "eu"}, "my_secret": "s-123456"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := b.mustCLI("variables", "import", vars); !strings.Contains(out, "3 variables imported") {
		t.Errorf("import: %s", out)
	}
	if got := strings.TrimSpace(b.mustCLI("variables", "get", "cfg")); got != `{"region": "eu"}` {
		t.Errorf("cfg = %q", got)
	}
	list := b.mustCLI("variables", "list", "-o", "json")
	if strings.Contains(list, "s-123456") || !strings.Contains(list, `"is_secret": true`) {
		t.Errorf("list shows a secret:\n%s", list)
	}
	conns := filepath.Join(dir, "conns.yaml")
	if err := os.WriteFile(conns, []byte("a: mysql://u:p%40ss@h:3306/db\nb:\n  conn_type: http\n  host: api.example\n  extra: {api_key: k-98765}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.mustCLI("connections", "import", conns)
	exp := filepath.Join(dir, "out.json")
	b.mustCLI("connections", "export", exp)
	data, _ := os.ReadFile(exp)
	if !strings.Contains(string(data), `"password": "p@ss"`) || !strings.Contains(string(data), "k-98765") {
		t.Errorf("export:\n%s", data)
	}
	if st, _ := os.Stat(exp); st.Mode().Perm() != 0o600 {
		t.Errorf("export mode %v", st.Mode())
	}
	get := b.mustCLI("connections", "get", "b", "-o", "json")
	if strings.Contains(get, "k-98765") {
		t.Errorf("get shows a sensitive extra field:\n%s", get)
	}
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"x": "no-scheme", "y": "http://h"}`), 0o600)
	if out, code := b.cli("connections", "import", bad); code != 2 || !strings.Contains(out, "connection x") {
		t.Errorf("bad import: exit %d %s", code, out)
	}
	if out, code := b.cli("connections", "get", "y"); code != 1 {
		t.Errorf("a refused import wrote y: exit %d %s", code, out)
	}
	if out, code := b.cli("connections", "add", "a", "--conn-uri", "http://x"); code != 1 || !strings.Contains(out, "already exists") {
		t.Errorf("add over an existing connection: exit %d %s", code, out)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
