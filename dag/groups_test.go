package dag

import (
	"reflect"
	"strings"
	"testing"
)

func TestTaskGroupsPrefixIDsAndExpandDependencies(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `
dag_id: groups
default_args: {retries: 1}
tasks:
  - {task_id: extract, operator: empty}
  - {task_id: load, operator: empty, upstream: [transform]}
task_groups:
  - group_id: transform
    default_args: {retries: 3}
    upstream: [extract]
    tasks:
      - {task_id: clean, operator: empty}
      - {task_id: enrich, operator: empty, upstream: [clean]}
      - {task_id: audit, operator: empty, retries: 0}
    task_groups:
      - group_id: stats
        upstream: [enrich]
        tasks:
          - {task_id: count, operator: empty}
          - {task_id: sum, operator: empty}
`)
	want := map[string][]string{
		"extract":               nil,
		"load":                  {"transform.audit", "transform.stats.count", "transform.stats.sum"},
		"transform.clean":       {"extract"},
		"transform.enrich":      {"transform.clean"},
		"transform.audit":       {"extract"},
		"transform.stats.count": {"transform.enrich"},
		"transform.stats.sum":   {"transform.enrich"},
	}
	if len(d.Tasks) != len(want) {
		t.Fatalf("tasks %v, want %d", d.TaskIDs(), len(want))
	}
	for id, ups := range want {
		task := d.Task(id)
		if task == nil {
			t.Fatalf("no task %s in %v", id, d.TaskIDs())
		}
		if !reflect.DeepEqual(task.Upstream, ups) {
			t.Errorf("%s upstream %v, want %v", id, task.Upstream, ups)
		}
	}
	if g := d.Task("transform.stats.sum").Group; g != "transform.stats" {
		t.Errorf("group of sum = %q", g)
	}
	if r := d.Task("transform.clean").Retries; r != 3 {
		t.Errorf("group default_args: retries %d, want 3", r)
	}
	if r := d.Task("transform.audit").Retries; r != 0 {
		t.Errorf("task's own retries lost: %d", r)
	}
	if r := d.Task("extract").Retries; r != 1 {
		t.Errorf("DAG default_args: retries %d, want 1", r)
	}
	if len(d.Groups) != 2 || d.Groups[1].ID != "transform.stats" || d.Groups[1].Parent != "transform" {
		t.Errorf("groups %+v", d.Groups)
	}
}

func TestTaskGroupsInDependencyChains(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `
dag_id: chains
tasks:
  - {task_id: extract, operator: empty}
  - {task_id: load, operator: empty}
task_groups:
  - group_id: tg
    tasks:
      - {task_id: a, operator: empty}
      - {task_id: b, operator: empty}
dependencies:
  - extract >> tg >> load
  - tg.a >> tg.b
`)
	if got := d.Task("tg.a").Upstream; !reflect.DeepEqual(got, []string{"extract"}) {
		t.Errorf("tg.a upstream %v", got)
	}
	if got := d.Task("tg.b").Upstream; !reflect.DeepEqual(got, []string{"tg.a"}) {
		t.Errorf("tg.b upstream %v (only the root gets the group's upstream)", got)
	}
	if got := d.Task("load").Upstream; !reflect.DeepEqual(got, []string{"tg.b"}) {
		t.Errorf("load upstream %v (only the leaf)", got)
	}
}

func TestTaskGroupErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, src, want string }{
		{"empty group", `
dag_id: x
task_groups:
  - group_id: g
    tasks: []
`, "dag.yaml:3:15: task group g has no tasks"},
		{"unknown key", `
dag_id: x
task_groups:
  - group_id: g
    taks: [{task_id: a, operator: empty}]
`, "dag.yaml:4:5: taks: unknown key; did you mean tasks?"},
		{"duplicate with a task", `
dag_id: x
tasks: [{task_id: g, operator: empty}]
task_groups:
  - group_id: g
    tasks: [{task_id: a, operator: empty}]
`, "dag.yaml:4:15: group_id: \"g\" is already a task or group id (first at line 2)"},
		{"unknown group upstream", `
dag_id: x
task_groups:
  - group_id: g
    upstream: [nope]
    tasks: [{task_id: a, operator: empty}]
`, "dag.yaml:4:16: upstream: unknown task or group \"nope\" (in task group g)"},
		{"unknown in chain", `
dag_id: x
task_groups:
  - group_id: g
    tasks: [{task_id: a, operator: empty}]
dependencies: [gg >> g]
`, "dag.yaml:5:16: dependencies: unknown task \"gg\""},
		{"cycle through a group", `
dag_id: x
tasks: [{task_id: a, operator: empty, upstream: [g]}]
task_groups:
  - group_id: g
    upstream: [a]
    tasks: [{task_id: b, operator: empty}]
`, "cycle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d, errs := parse(t, c.src)
			if d != nil || len(errs) == 0 {
				t.Fatalf("want an error containing %q, got none", c.want)
			}
			if !strings.Contains(errs.Error(), c.want) {
				t.Fatalf("errors:\n%v\nwant one containing %q", errs, c.want)
			}
		})
	}
}
