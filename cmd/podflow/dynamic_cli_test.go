package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dags show draws task groups as a tree and marks mapped tasks.
func TestDagsShowGroupsAndMapping(t *testing.T) {
	ctx := context.Background()
	out, err := runCLI(t, ctx, "dags", "show", "../../examples/dags/task_groups.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"task groups:\n  [transform]\n    - transform.clean\n    - transform.double\n    [transform.checks]\n      - transform.checks.not_empty",
		"load                        bash      all_success   transform.checks.not_empty, transform.checks.even"} {
		if !strings.Contains(out, want) {
			t.Errorf("dags show lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, ctx, "dags", "show", "../../examples/dags/mapping.yaml")
	if err != nil || !strings.Contains(out, "process          bash [mapped]") {
		t.Errorf("mapped task not marked: %v\n%s", err, out)
	}
}

// dry-run of a mapped pod task prints instance 0's pod when the list is
// known without running, and says why not otherwise.
func TestDryRunOfAMappedPodTask(t *testing.T) {
	dir := t.TempDir()
	src := `dag_id: m
params: {files: [[a.csv], [b.csv]]}
tasks:
  - {task_id: list, operator: bash, bash_command: "echo '[[1]]'"}
  - task_id: by_param
    operator: kubernetes_pod
    image: alpine
    random_name_suffix: false
    expand: {arguments: "{{ params.files | tojson }}"}
  - task_id: by_xcom
    operator: kubernetes_pod
    image: alpine
    upstream: [list]
    expand: {arguments: "{{ ti.xcom_pull('list') }}"}
`
	path := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	out, err := runCLI(t, ctx, "dry-run", path, "by_param")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{`maps over 2 instances: [{"arguments":["a.csv"]},{"arguments":["b.csv"]}]`, "this is instance 0", "name: by-param-0", `map_index: "0"`, "- a.csv"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, ctx, "dry-run", path, "by_xcom")
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "task by_xcom is mapped and its list is known only at run time") {
		t.Errorf("dry-run of an XCom-mapped task: exit %d, %v\n%s", exitCode(err), err, out)
	}
}

// podflow test runs one instance of a mapped task.
func TestTestOneMappedInstance(t *testing.T) {
	out, err := runCLI(t, context.Background(), "test", "../../examples/dags/mapping.yaml", "matrix", "--map-index", "3")
	if err != nil || !strings.Contains(out, "[stdout] us/a") || !strings.Contains(out, "this is instance 3") {
		t.Errorf("test --map-index 3: %v\n%s", err, out)
	}
	_, err = runCLI(t, context.Background(), "test", "../../examples/dags/mapping.yaml", "matrix", "--map-index", "4")
	if err == nil || !strings.Contains(err.Error(), "maps over 4 instances: there is no map index 4") {
		t.Errorf("test --map-index 4: %v", err)
	}
}
