package dag

import (
	"reflect"
	"strings"
	"testing"
)

func TestMappedTaskParses(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `
dag_id: m
tasks:
  - {task_id: list, operator: bash, bash_command: "echo '[1, 2]'"}
  - task_id: each
    operator: bash
    upstream: [list]
    env: {A: "1"}
    expand:
      bash_command: ["echo a", "echo b"]
      cwd: "{{ ti.xcom_pull('list') }}"
    map_index_template: "{{ ti.map_index }}"
    max_active_tis_per_dagrun: 4
    max_active_tis_per_dag: 8
  - task_id: kw
    operator: bash
    expand_kwargs:
      - {bash_command: "echo 1", cwd: /tmp}
      - {bash_command: "echo 2"}
`)
	each := d.Task("each")
	if !each.Mapped() || each.MaxActiveTIsPerDagrun != 4 || each.MaxActiveTIsPerDag != 8 {
		t.Fatalf("each: %+v", each)
	}
	want := []ExpandArg{{Option: "bash_command", Literal: []any{"echo a", "echo b"}}, {Option: "cwd", Template: "{{ ti.xcom_pull('list') }}"}}
	if !reflect.DeepEqual(each.Map.Expand, want) || each.Map.IndexTemplate != "{{ ti.map_index }}" {
		t.Errorf("expand %+v", each.Map)
	}
	if _, shared := each.Options["env"]; !shared {
		t.Errorf("env lost: %v", each.Options)
	}
	kw := d.Task("kw").Map.Kwargs
	if kw == nil || len(kw.Literal) != 2 || kw.Literal[0].(map[string]any)["cwd"] != "/tmp" {
		t.Errorf("expand_kwargs %+v", kw)
	}
	if d.Task("list").Mapped() {
		t.Error("list is not mapped")
	}
}

func TestMappingErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, task, want string }{
		{"unknown option", `{task_id: a, operator: bash, expand: {bash_comand: [x]}}`,
			`dag.yaml:3:43: expand.bash_comand: unknown option "bash_comand" for operator bash; did you mean bash_command?`},
		{"literal not a list", `{task_id: a, operator: bash, expand: {bash_command: "echo"}}`,
			`dag.yaml:3:57: expand.bash_command: wants a list, or a template that renders one ("{{ … }}"), got string "echo"`},
		{"task_id cannot vary", `{task_id: a, operator: bash, bash_command: x, expand: {task_id: [a, b]}}`,
			"dag.yaml:3:60: expand.task_id: task_id cannot vary per mapped instance"},
		{"pool cannot vary", `{task_id: a, operator: bash, bash_command: x, expand: {pool: [a, b]}}`,
			"dag.yaml:3:60: expand.pool: pool cannot vary per mapped instance"},
		{"given twice", `{task_id: a, operator: bash, bash_command: x, expand: {bash_command: [a]}}`,
			"expand.bash_command: option bash_command is also given directly"},
		{"item of the wrong kind", `{task_id: a, operator: bash, expand: {bash_command: ["x", [1]]}}`,
			"expand.bash_command[1]: wants a string, got a list"},
		{"both", `{task_id: a, operator: bash, expand: {bash_command: [x]}, expand_kwargs: [{bash_command: y}]}`,
			"expand_kwargs: a task maps over expand or expand_kwargs, not both"},
		{"kwargs object", `{task_id: a, operator: bash, expand_kwargs: [{bash_command: y, pool: p}]}`,
			"expand_kwargs[0].pool: pool cannot vary per mapped instance"},
		{"template without mapping", `{task_id: a, operator: bash, bash_command: x, map_index_template: "{{ ti.map_index }}"}`,
			"map_index_template: only a mapped task"},
		{"throttle", `{task_id: a, operator: bash, bash_command: x, max_active_tis_per_dagrun: 0}`,
			"max_active_tis_per_dagrun: wants 1 or more, got 0"},
		{"required still required", `{task_id: a, operator: bash, expand: {cwd: [a]}}`,
			"bash_command: required key is missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d, errs := parse(t, "dag_id: x\ntasks:\n  - "+c.task+"\n")
			if d != nil || !strings.Contains(errs.Error(), c.want) {
				t.Fatalf("errors:\n%v\nwant one containing %q", errs, c.want)
			}
		})
	}
}
