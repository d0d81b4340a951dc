package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/operators/builtin"
)

// What an Airflow user tripped over on day one (issue 20), each through the
// CLI as they typed it: JSON XComs from bash, a template error retried in
// vain, logs of a task that never ran, mistyped ids, XCom keys, previews
// with a real run's XComs, tasks render, static template checks.
func TestDayOneFriction(t *testing.T) {
	b := flowtest.New(t, builtin.Registry(builtin.Deps{}))
	src := `dag_id: dayone
tasks:
  - task_id: extract
    operator: bash
    bash_command: |
      echo '{"orders": [3, 4], "n": 12345678901234567}'
  - task_id: extract_json
    operator: bash
    output_processor: json
    bash_command: |
      echo '{"orders": [5]}'
  - task_id: use
    operator: bash
    upstream: [extract, extract_json]
    bash_command: |
      echo "got {{ (ti.xcom_pull('extract') | fromjson).orders[1] }} {{ ti.xcom_pull('extract_json').orders[0] }} {{ (ti.xcom_pull('extract') | fromjson).n }}"
  - task_id: broken
    operator: bash
    upstream: [use]
    retries: 3
    retry_delay: 1s
    check_templates: false
    bash_command: echo {{ ti.xcom_pull('extract').orders }}
  - task_id: after
    operator: bash
    upstream: [broken]
    bash_command: echo never
`
	b.DAG("dayone", src)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	startStandalone(t, "--database-url", b.URL, "--dags-folder", b.Dir, "--workers", "4")
	cli := func(args ...string) (string, int) {
		out, err := runCLI(t, ctx, append(args, "--database-url", b.URL, "--dags-folder", b.Dir)...)
		if err != nil {
			out += err.Error() // what main prints to stderr
		}
		return out, exitCode(err)
	}
	mustContain := func(what, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s lacks %q:\n%s", what, w, out)
			}
		}
	}

	out, code := cli("trigger", "dayone", "--wait")
	if code != 1 {
		t.Fatalf("trigger --wait: exit %d, want 1 (broken fails)\n%s", code, out)
	}
	runID := regexp.MustCompile(`triggered dayone run (\S+)`).FindStringSubmatch(out)[1]

	// New DAGs start paused (as in Airflow): saving a file starts no
	// scheduled run; triggering works all the same.
	out, _ = cli("dags", "list", "-o", "json")
	var dags []dagRecord
	if err := json.Unmarshal([]byte(out), &dags); err != nil || len(dags) != 1 || !dags[0].IsPaused {
		t.Errorf("dags list: %v, want dayone paused at creation\n%s", err, out)
	}

	// A bash task's JSON, parsed with fromjson or output_processor: json;
	// big integers stay exact.
	out, _ = cli("logs", "dayone", runID, "use")
	mustContain("logs of use", out, "got 4 5 12345678901234567")

	// A template error fails at once, with a hint, though retries are left.
	out, code = cli("tasks", "dayone", runID, "-o", "json")
	var tasks []taskRecord
	if err := json.Unmarshal([]byte(out), &tasks); code != 0 || err != nil {
		t.Fatalf("tasks -o json: exit %d, %v\n%s", code, err, out)
	}
	byID := map[string]taskRecord{}
	for _, r := range tasks {
		byID[r.TaskID] = r
	}
	if br := byID["broken"]; br.State != "failed" || br.TryNumber != 1 ||
		!strings.Contains(br.Error, "not retried") || !strings.Contains(br.Error, "fromjson") {
		t.Errorf("broken = %+v: want failed on try 1, not retried, pointing to fromjson", br)
	}
	if af := byID["after"]; af.State != "upstream_failed" || af.StartDate != nil {
		t.Errorf("after = %+v: want upstream_failed, never started", af)
	}

	// logs of a task that never ran, and mistyped ids.
	out, code = cli("logs", "dayone", runID, "after")
	if code != 1 {
		t.Errorf("logs of a task that never ran: exit %d, want 1", code)
	}
	mustContain("logs of after", out, "never ran", "upstream_failed")
	out, code = cli("logs", "dayone", runID, "brokn")
	if code != 1 {
		t.Errorf("logs of a mistyped task: exit %d", code)
	}
	mustContain("logs brokn", out, `did you mean "broken"?`)
	out, _ = cli("tasks", "dayone", runID+"x")
	mustContain("tasks of a mistyped run", out, "has no run", `did you mean "`+runID+`"?`)
	out, _ = cli("trigger", "dayon")
	mustContain("trigger of a mistyped DAG", out, `did you mean "dayone"?`)

	// xcom get with a wrong key lists the keys there are.
	out, code = cli("xcom", "get", "dayone", runID, "extract", "--key", "orders")
	if code != 1 {
		t.Errorf("xcom get of a missing key: exit %d", code)
	}
	mustContain("xcom get --key orders", out, "its keys: return_value")

	// Previews with the run's own XComs, or given ones.
	out, code = cli("tasks", "render", "dayone", runID, "use")
	if code != 0 {
		t.Errorf("tasks render: exit %d\n%s", code, out)
	}
	mustContain("tasks render", out, "property: bash_command", `echo "got 4 5 12345678901234567"`)
	out, code = cli("test", "dayone", "use", "--run-id", runID)
	if code != 0 {
		t.Errorf("test --run-id: exit %d\n%s", code, out)
	}
	mustContain("test --run-id", out, "got 4 5 12345678901234567", "task use succeeded")
	out, code = cli("test", "dayone", "use", "--xcom", `extract="{\"orders\": [1, 9], \"n\": 2}"`, "--xcom", `extract_json={"orders": [7]}`)
	if code != 0 {
		t.Errorf("test --xcom: exit %d\n%s", code, out)
	}
	mustContain("test --xcom", out, "got 9 7 2")

	// validate finds the names a template cannot resolve before any run.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "names.yaml"), []byte("dag_id: names\nparams: {table: t}\ntasks:\n"+
		"  - {task_id: a, operator: bash, bash_command: 'echo {{ prev_ds }} {{ params.tabel }}'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code = cli("validate", dir)
	if code != 1 {
		t.Errorf("validate: exit %d, want 1\n%s", code, out)
	}
	mustContain("validate", out, `names.yaml:4:57: bash_command: unknown name "prev_ds"`, `params.tabel is not declared; did you mean "table"?`)

	// The repair loop: fix the file, clear the failed task. A plain clear
	// reruns the run's own (broken) version and says so; with
	// --use-latest-version the run moves to the fixed one and succeeds.
	run, err := b.Store.Run(ctx, "dayone", runID)
	if err != nil {
		t.Fatal(err)
	}
	b.DAG("dayone", strings.Replace(src, "{{ ti.xcom_pull('extract').orders }}", "fixed {{ (ti.xcom_pull('extract') | fromjson).orders }}", 1))
	flowtest.Eventually(t, "the scheduler syncs the fixed file", time.Minute, func() bool {
		row, err := b.Store.Dag(ctx, "dayone")
		return err == nil && row.Hash != "" && row.Hash != run.Hash
	})
	out, code = cli("clear", "dayone", runID, "--task", "broken", "--downstream")
	if code != 0 {
		t.Fatalf("clear: exit %d\n%s", code, out)
	}
	mustContain("clear (pinned)", out, "the one the run was created with", "--use-latest-version")
	if state := b.WaitRun("dayone", runID, time.Minute); state != "failed" {
		t.Errorf("pinned rerun: run %s, want failed again (the old template)", state)
	}
	out, code = cli("clear", "dayone", runID, "--task", "broken", "--downstream", "--use-latest-version")
	if code != 0 {
		t.Fatalf("clear --use-latest-version: exit %d\n%s", code, out)
	}
	mustContain("clear --use-latest-version", out, "they run with the DAG's current version", run.Hash[:12])
	if state := b.WaitRun("dayone", runID, time.Minute); state != "success" {
		t.Errorf("rerun with the latest version: run %s, want success", state)
	}
	moved, err := b.Store.Run(ctx, "dayone", runID)
	if err != nil || moved.Hash == run.Hash {
		t.Errorf("the run's version after --use-latest-version: %v (was %.12s)", err, run.Hash)
	}
	out, _ = cli("logs", "dayone", runID, "broken")
	mustContain("logs of the fixed try", out, "fixed [3, 4]", "DAG version "+moved.Hash[:12])
}
