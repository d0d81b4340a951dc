package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/operators/builtin"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 2
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := "dag_id: good\nschedule: '@daily'\nstart_date: 2026-01-01\ntasks:\n  - {task_id: a, operator: bash, bash_command: 'echo hi'}\n"
	if err := os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := runCLI(t, ctx, "validate", dir)
	if exitCode(err) != 0 || !strings.Contains(out, "good") || !strings.Contains(out, "@daily") {
		t.Fatalf("validate of a good folder: exit %d\n%s", exitCode(err), out)
	}
	bad := "dag_id: bad\ntasks:\n  - task_id: a\n    operator: bash\n    bash_comand: 'echo hi'\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, ctx, "validate", dir)
	if exitCode(err) != 1 {
		t.Fatalf("validate with a broken file: exit %d, want 1\n%s", exitCode(err), out)
	}
	for _, want := range []string{"bad.yaml:5:5:", "bash_comand", "did you mean", "bash_command"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}

// Through the CLI as a user types it: trigger --wait, tasks, logs, xcom get,
// clear --task --downstream, backfill, with a standalone process running.
func TestCLIRunLifecycle(t *testing.T) {
	b := flowtest.New(t, builtin.Registry(builtin.Deps{}))
	url, dags := b.URL, b.Dir
	counter := filepath.Join(t.TempDir(), "count")
	src := `dag_id: life
schedule: "@daily"
start_date: 2026-01-01
tasks:
  - {task_id: first, operator: bash, bash_command: 'echo 7'}
  - {task_id: second, operator: bash, upstream: [first], bash_command: 'echo x >> ` + counter + `; echo "got {{ ti.xcom_pull(''first'') }}"'}
  - {task_id: third, operator: bash, upstream: [second], bash_command: 'echo "{{ dag_run.conf.get(''fail'', ''no'') }}" | grep -q no'}
`
	b.DAG("life", src)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	startStandalone(t, "--database-url", url, "--dags-folder", dags, "--workers", "4")
	db := []string{"--database-url", url, "--dags-folder", dags}
	cli := func(args ...string) (string, int) {
		out, err := runCLI(t, ctx, append(args, db...)...)
		if err != nil {
			out += err.Error() // what main prints to stderr
		}
		return out, exitCode(err)
	}
	out, code := cli("trigger", "life", "--wait")
	if code != 0 {
		t.Fatalf("trigger --wait: exit %d\n%s", code, out)
	}
	runID := regexp.MustCompile(`triggered life run (\S+)`).FindStringSubmatch(out)[1]
	if !strings.Contains(out, "3/3 tasks done") {
		t.Errorf("no progress line: %s", out)
	}
	out, _ = cli("tasks", "life", runID)
	if strings.Count(out, "success") != 4 { // run line + 3 tasks
		t.Errorf("tasks:\n%s", out)
	}
	out, _ = cli("logs", "life", runID, "second")
	if !strings.Contains(out, "got 7") {
		t.Errorf("logs of second:\n%s", out)
	}
	out, code = cli("xcom", "get", "life", runID, "first")
	if code != 0 || strings.TrimSpace(out) != `"7"` {
		t.Errorf("xcom get: exit %d %q", code, out)
	}

	out, code = cli("trigger", "life", "--wait", "--conf", `{"fail": "yes"}`)
	if code != 1 {
		t.Errorf("trigger --wait of a failing run: exit %d, want 1\n%s", code, out)
	}
	if _, code = cli("trigger", "life", "--conf", "not json"); code != 2 {
		t.Errorf("bad --conf: exit %d, want 2", code)
	}
	// A conf over the ~128 KiB a command-line argument may carry, from a file.
	bigConf := filepath.Join(t.TempDir(), "conf.json")
	if err := os.WriteFile(bigConf, []byte(`{"fail": "no", "pad": "`+strings.Repeat("x", 300<<10)+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code = cli("trigger", "life", "--wait", "--conf-file", bigConf); code != 0 {
		t.Errorf("trigger --conf-file with a 300 KiB conf: exit %d\n%s", code, out)
	}
	deep := filepath.Join(t.TempDir(), "deep.json")
	if err := os.WriteFile(deep, []byte(`{"a":`+strings.Repeat("[", 10000)+strings.Repeat("]", 10000)+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := cli("runs", "list", "life")
	if out, code = cli("trigger", "life", "--conf-file", deep); code != 2 || !strings.Contains(out, "nested more than 32 levels") {
		t.Errorf("trigger with a conf nested 10,000 deep: exit %d, want 2 and the nesting limit\n%s", code, out)
	}
	if after, _ := cli("runs", "list", "life"); after != before {
		t.Errorf("a refused conf created a run:\n%s", after)
	}
	guarded := "dag_id: guarded\nparams: {namespace: prod}\nallow_conf_override: false\n" +
		"tasks:\n  - {task_id: t, operator: bash, bash_command: 'echo {{ params.namespace }}'}\n"
	if err := os.WriteFile(filepath.Join(dags, "guarded.yaml"), []byte(guarded), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code = cli("trigger", "guarded", "--conf", `{"namespace": "kube-system"}`); code != 2 ||
		!strings.Contains(out, "does not let a conf override param namespace") {
		t.Errorf("conf overriding a protected param: exit %d, want 2\n%s", code, out)
	}

	// Rerun from second: second and third run again, first does not.
	secondRuns := func() int { data, _ := os.ReadFile(counter); return strings.Count(string(data), "x") }
	ranBefore := secondRuns()
	out, code = cli("clear", "life", runID, "--task", "second", "--downstream")
	if code != 0 || !strings.Contains(out, "cleared 2") {
		t.Fatalf("clear: exit %d\n%s", code, out)
	}
	if state := b.WaitRun("life", runID, time.Minute); state != runstate.RunSuccess {
		t.Fatalf("cleared run %s, want success", state)
	}
	out, _ = cli("runs", "list", "life")
	if !regexp.MustCompile(regexp.QuoteMeta(runID) + `\s+success`).MatchString(out) {
		t.Errorf("runs list does not show the rerun's success:\n%s", out)
	}
	if n := secondRuns(); n != ranBefore+1 {
		t.Errorf("second ran %d more times after the clear, want 1", n-ranBefore)
	}
	out, _ = cli("logs", "life", runID, "second", "--try", "2")
	if !strings.Contains(out, "got 7") {
		t.Errorf("second's try 2 log:\n%s", out)
	}

	out, code = cli("backfill", "life", "--start", "2026-02-01", "--end", "2026-02-03", "--wait")
	if code != 0 || !strings.Contains(out, "3 backfill runs queued") || strings.Count(out, " success\n") != 3 {
		t.Errorf("backfill --wait: exit %d\n%s", code, out)
	}
	// The same dates again: no second run beside the first, and why.
	out, code = cli("backfill", "life", "--start", "2026-02-01", "--end", "2026-02-03")
	if code != 0 || !strings.Contains(out, "0 backfill runs queued, 0 rerun, 3 skipped") || !strings.Contains(out, "--reprocess-behavior completed reruns it") {
		t.Errorf("backfill of dates with runs: exit %d\n%s", code, out)
	}
	out, code = cli("backfill", "life", "--start", "2026-02-02", "--end", "2026-02-02", "--reprocess-behavior", "completed", "--wait")
	if code != 0 || !strings.Contains(out, "rerunning backfill__2026-02-02") || !strings.Contains(out, "0 backfill runs queued, 1 rerun") {
		t.Errorf("backfill --reprocess-behavior completed: exit %d\n%s", code, out)
	}
	for _, c := range []struct{ start, end, want string }{
		{"2026-02-03", "2026-02-01", "the range is empty"},
		{"2025-01-01", "2025-01-31", "before the DAG's start_date 2026-01-01"},
	} {
		if out, code = cli("backfill", "life", "--start", c.start, "--end", c.end); code != 1 || !strings.Contains(out, c.want) {
			t.Errorf("backfill %s..%s: exit %d, want 1 and %q\n%s", c.start, c.end, code, c.want, out)
		}
	}

	for _, bad := range []string{"0s", "-1h", "106752d", "1000000h"} {
		out, code = cli("db", "clean", "--older-than", bad)
		if code == 0 || !strings.Contains(out, "want a positive duration") {
			t.Errorf("db clean --older-than %s: exit %d, want an error\n%s", bad, code, out)
		}
		if out, _ := cli("runs", "list", "life"); !strings.Contains(out, runID) {
			t.Fatalf("db clean --older-than %s deleted the run %s:\n%s", bad, runID, out)
		}
	}
	time.Sleep(10 * time.Millisecond) // the run must have ended more than --older-than ago
	out, code = cli("db", "clean", "--older-than", "1ms")
	if code != 0 || !regexp.MustCompile(`deleted [1-9]\d* finished runs .* and [0-9]+ DAG versions`).MatchString(out) {
		t.Errorf("db clean: exit %d\n%s", code, out)
	}
	if out, _ = cli("runs", "list", "life"); strings.Contains(out, runID) {
		t.Errorf("db clean left the finished run %s:\n%s", runID, out)
	}
	if _, code = cli("xcom", "get", "life", runID, "first"); code != 1 {
		t.Errorf("xcom of a cleaned run: exit %d, want 1 (gone)", code)
	}
}
