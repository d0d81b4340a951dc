package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/alerts"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
)

// validate names an undeclared notifier with its line; notifiers test sends
// a signed message and prints the receiver's answer; alerts list --failed
// shows the given-up alerts.
func TestAlertsCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var sigOK bool
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sigOK = r.Header.Get(alerts.HeaderSignature) == alerts.Sign([]byte("k3y"), r.Header.Get(alerts.HeaderTimestamp), body)
		if strings.Contains(r.URL.Path, "broken") {
			http.Error(w, "nope", http.StatusBadGateway)
			return
		}
		fmt.Fprint(w, "thanks")
	}))
	defer hook.Close()
	secret := filepath.Join(dir, "secret")
	cfg := filepath.Join(dir, "podflow.yaml")
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(secret, "k3y\n")
	write(cfg, fmt.Sprintf(`notifiers:
  ops: {type: webhook, url: %s/hook, secret_file: %s}
  broken: {type: webhook, url: %s/broken}
`, hook.URL, secret, hook.URL))
	dags := filepath.Join(dir, "dags")
	if err := os.Mkdir(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(dags, "d.yaml"), "dag_id: d\non_failure_callback: [ops]\ntasks:\n  - {task_id: a, operator: empty, on_retry_callback: [opz]}\n")
	out, err := runCLI(t, ctx, "validate", dags, "--config", cfg)
	if exitCode(err) != 1 || !strings.Contains(out, `d.yaml:4:55: notifier "opz" is not declared in podflow.yaml's notifiers; did you mean ops?`) {
		t.Errorf("validate with an undeclared notifier: exit %d\n%s", exitCode(err), out)
	}
	write(filepath.Join(dags, "d.yaml"), "dag_id: d\non_failure_callback: [ops]\ntasks:\n  - {task_id: a, operator: empty, on_retry_callback: [broken]}\n")
	if out, err := runCLI(t, ctx, "validate", dags, "--config", cfg); err != nil {
		t.Errorf("validate of a good DAG: %v\n%s", err, out)
	}

	out, err = runCLI(t, ctx, "notifiers", "test", "ops", "--config", cfg)
	if err != nil || !strings.Contains(out, "status 200") || !strings.Contains(out, "answer: thanks") || !sigOK {
		t.Errorf("notifiers test ops: %v, signature ok %v\n%s", err, sigOK, out)
	}
	out, err = runCLI(t, ctx, "notifiers", "test", "broken", "--config", cfg)
	if exitCode(err) != 1 || !strings.Contains(out, "status 502") || !strings.Contains(out, "answer: nope") {
		t.Errorf("notifiers test broken: exit %d %v\n%s", exitCode(err), err, out)
	}
	if _, err := runCLI(t, ctx, "notifiers", "test", "nobody", "--config", cfg); exitCode(err) != 2 || !strings.Contains(err.Error(), "not declared") {
		t.Errorf("notifiers test nobody: %v", err)
	}

	url := pgtest.NewMigratedDatabase(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Pool.Exec(ctx, `INSERT INTO alert_outbox (notifier, event, dag_id, run_id, task_id, try_number, payload, state, attempts, last_error)
		VALUES ('ops', 'failure', 'd', 'r1', 'a', 1, '{"state":"failed"}', 'failed', 7, 'HTTP 500: receiver broken'),
		       ('ops', 'success', 'd', 'r2', '', 0, '{"state":"success"}', 'sent', 1, NULL)`); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, ctx, "alerts", "list", "--database-url", url)
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, "HTTP 500: receiver broken") {
		t.Errorf("alerts list: %v\n%s", err, out)
	}
	out, err = runCLI(t, ctx, "alerts", "list", "--failed", "-o", "json", "--database-url", url)
	var recs []alertRecord
	if err != nil || json.Unmarshal([]byte(out), &recs) != nil || len(recs) != 1 || recs[0].RunID != "r1" || recs[0].Attempts != 7 {
		t.Errorf("alerts list --failed -o json: %v\n%s", err, out)
	}
}
