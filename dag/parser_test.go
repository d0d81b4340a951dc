package dag

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseValidDAG(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `
dag_id: etl
description: Extract, transform, load
schedule: "30 2 * * *"
timezone: Europe/Berlin
start_date: 2026-01-01
end_date: 2026-12-31T18:00:00Z
catchup: true
max_active_runs: 2
dagrun_timeout: 1h30m
tags: [etl, nightly]
params: {table: events, limit: 10, deep: {a: [1, 2.5, true, null]}}
default_args:
  retries: 2
  retry_delay: 30
  retry_exponential_backoff: true
  max_retry_delay: 10m
  execution_timeout: 1h
  pool: etl_pool
  owner: data
tasks:
  - task_id: extract
    operator: bash
    bash_command: echo '{"rows":3}'
    env: {TABLE: "{{ params.table }}", LIMIT: 10}
    skip_on_exit_code: [99, 100]
  - task_id: transform
    operator: bash
    bash_command: |
      echo "{{ ti.xcom_pull('extract') }}"
    retries: 0
    trigger_rule: none_failed
    priority_weight: 5
  - task_id: load
    operator: empty
    pool: load_pool
  - task_id: report.v2
    operator: empty
    upstream: load
dependencies: ["extract >> transform >> load"]
`)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if d.ID != "etl" || d.Description != "Extract, transform, load" || d.Schedule != "30 2 * * *" ||
		d.Timezone.String() != "Europe/Berlin" || !d.Catchup || d.MaxActiveRuns != 2 ||
		d.MaxActiveTasks != DefaultMaxActiveTasks || d.DagrunTimeout != 90*time.Minute {
		t.Errorf("DAG fields: %+v", d)
	}
	if want := time.Date(2026, 1, 1, 0, 0, 0, 0, berlin); !d.StartDate.Equal(want) {
		t.Errorf("StartDate = %v, want %v", d.StartDate, want)
	}
	if want := time.Date(2026, 12, 31, 18, 0, 0, 0, time.UTC); !d.EndDate.Equal(want) {
		t.Errorf("EndDate = %v, want %v", d.EndDate, want)
	}
	if !reflect.DeepEqual(d.Tags, []string{"etl", "nightly"}) {
		t.Errorf("Tags = %v", d.Tags)
	}
	wantParams := map[string]any{"table": "events", "limit": 10, "deep": map[string]any{"a": []any{1, 2.5, true, nil}}}
	if !reflect.DeepEqual(d.Params, wantParams) {
		t.Errorf("Params = %#v", d.Params)
	}
	if len(d.Hash) != 64 || d.Path != "dag.yaml" || len(d.Source) == 0 {
		t.Errorf("Hash %q Path %q Source %d bytes", d.Hash, d.Path, len(d.Source))
	}

	extract, transform, load, report := d.Task("extract"), d.Task("transform"), d.Task("load"), d.Task("report.v2")
	if extract.Retries != 2 || extract.RetryDelay != 30*time.Second || !extract.RetryExponentialBackoff ||
		extract.MaxRetryDelay != 10*time.Minute || extract.ExecutionTimeout != time.Hour ||
		extract.Pool != "etl_pool" || extract.Owner != "data" || extract.TriggerRule != AllSuccess ||
		extract.PriorityWeight != 1 || extract.Line != 21 || extract.Column != 5 {
		t.Errorf("extract = %+v", extract)
	}
	wantOptions := map[string]any{
		"bash_command":      `echo '{"rows":3}'`,
		"env":               map[string]any{"TABLE": "{{ params.table }}", "LIMIT": "10"},
		"skip_on_exit_code": []any{99, 100},
	}
	if !reflect.DeepEqual(extract.Options, wantOptions) {
		t.Errorf("extract.Options = %#v", extract.Options)
	}
	if extract.Nodes != nil || d.Task("load").Options != nil {
		// bash does not decode its nodes when it runs (KeepNodes unset), and
		// load has no options: neither is kept.
		t.Errorf("extract.Nodes = %v, load.Options = %v: want both nil", extract.Nodes, d.Task("load").Options)
	}
	if transform.Retries != 0 || transform.TriggerRule != NoneFailed || transform.PriorityWeight != 5 ||
		!reflect.DeepEqual(transform.Upstream, []string{"extract"}) ||
		transform.Options["bash_command"] != "echo \"{{ ti.xcom_pull('extract') }}\"\n" {
		t.Errorf("transform = %+v", transform)
	}
	if load.Pool != "load_pool" || !reflect.DeepEqual(load.Upstream, []string{"transform"}) || len(load.Options) != 0 {
		t.Errorf("load = %+v", load)
	}
	if !reflect.DeepEqual(report.Upstream, []string{"load"}) {
		t.Errorf("report.Upstream = %v", report.Upstream)
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `
dag_id: minimal
tasks:
  - task_id: only
    operator: empty
`)
	if d.Schedule != "" || d.Timezone != time.UTC || d.Catchup || d.MaxActiveRuns != 16 || d.MaxActiveTasks != 16 ||
		!d.StartDate.IsZero() || d.Params == nil {
		t.Errorf("DAG defaults: %+v", d)
	}
	task := d.Tasks[0]
	if task.Retries != 0 || task.RetryDelay != 5*time.Minute || task.Pool != "default_pool" ||
		task.PriorityWeight != 1 || task.TriggerRule != AllSuccess || task.ExecutionTimeout != 0 {
		t.Errorf("task defaults: %+v", task)
	}
}

func TestParseDurations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"30s", 30 * time.Second},
		{"5m", 5 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"90", 90 * time.Second},
		{`"90"`, 90 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"0", 0},
	} {
		d := mustParse(t, "dag_id: d\ndagrun_timeout: "+tc.in+"\ntasks: [{task_id: t, operator: empty}]\n")
		if d.DagrunTimeout != tc.want {
			t.Errorf("dagrun_timeout: %s = %v, want %v", tc.in, d.DagrunTimeout, tc.want)
		}
	}
}

func TestParseDependencies(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `
dag_id: deps
tasks:
  - {task_id: a, operator: empty}
  - {task_id: b, operator: empty}
  - {task_id: c, operator: empty}
  - {task_id: d, operator: empty, upstream: [c]}
  - {task_id: e, operator: empty}
dependencies:
  - "a >> [b, c]"
  - "[b, c] >> d"
  - "e << d"
  - a >> b
`)
	want := map[string][]string{"a": nil, "b": {"a"}, "c": {"a"}, "d": {"c", "b"}, "e": {"d"}}
	for id, ups := range want {
		if got := d.Task(id).Upstream; !reflect.DeepEqual(got, ups) {
			t.Errorf("%s.Upstream = %v, want %v", id, got, ups)
		}
	}
}

func TestParseMergeKeysAndAliases(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `
dag_id: anchors
tasks:
  - &base {task_id: a, operator: bash, bash_command: echo a, retries: 3, env: &env {X: "1"}}
  - <<: *base
    task_id: b
    bash_command: echo b
    env: *env
`)
	b := d.Task("b")
	if b.Retries != 3 || b.Options["bash_command"] != "echo b" || !reflect.DeepEqual(b.Options["env"], map[string]any{"X": "1"}) {
		t.Errorf("b = %+v", b)
	}
}

// TestParseErrors checks each kind of problem is reported with its exact
// position and message.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "yaml syntax error",
			src: `
dag_id: x
tasks:
  - task_id: a
    operator: [bash
`,
			// The flow sequence that is never closed starts on line 4.
			want: []string{"dag.yaml:4:1: invalid YAML: did not find expected ',' or ']'"},
		},
		{
			name: "yaml parser error on a later line",
			src: `
dag_id: x
tasks:
  - task_id: a
 operator: bash
`,
			want: []string{"dag.yaml:4:1: invalid YAML: did not find expected key"},
		},
		{
			name: "yaml scanner error",
			src: `
dag_id: x
tasks:
  - task_id: "a
`,
			want: []string{"dag.yaml:3:1: invalid YAML: found unexpected end of stream"},
		},
		{
			name: "yaml tab indentation",
			src:  "dag_id: x\ntasks:\n\t- task_id: a\n",
			want: []string{"dag.yaml:3:1: invalid YAML: found character that cannot start any token"},
		},
		{
			name: "yaml syntax error without a line",
			src:  "dag_id: a: b\n",
			want: []string{"dag.yaml:1:1: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name: "unknown anchor",
			src:  "dag_id: x\ntasks: *nope\n",
			want: []string{`dag.yaml:2:8: invalid YAML: unknown anchor "nope" referenced`},
		},
		{
			name: "empty file",
			src:  "# nothing\n",
			want: []string{"dag.yaml:1:1: the file is empty: a DAG file wants a mapping with dag_id and tasks"},
		},
		{
			name: "not a mapping",
			src:  "- a\n- b\n",
			want: []string{"dag.yaml:1:1: a DAG file wants a mapping with dag_id and tasks at the top, got a list"},
		},
		{
			name: "two documents",
			src:  "dag_id: x\ntasks: [{task_id: a, operator: empty}]\n---\ndag_id: y\n",
			want: []string{`dag.yaml:4:1: a DAG file holds one YAML document; this is a second one (remove the "---" or split the file)`},
		},
		{
			name: "missing dag_id and tasks",
			src:  "description: nothing here\n",
			want: []string{
				"dag.yaml:1:1: dag_id: required key is missing",
				"dag.yaml:1:1: tasks: required key is missing",
			},
		},
		{
			name: "unknown keys with suggestions",
			src: `
dag_id: x
schedul: "@daily"
schedule_interval: "@daily"
catchupp: true
colour: blue
tasks:
  - task_id: a
    operator: bash
    bash_comand: echo
    retires: 2
    depends_on: [b]
  - task_id: b
    operator: empty
    bash_command: echo
`,
			want: []string{
				"dag.yaml:2:1: schedul: unknown key; did you mean schedule?",
				"dag.yaml:3:1: schedule_interval: unknown key; did you mean schedule?",
				"dag.yaml:4:1: catchupp: unknown key; did you mean catchup?",
				"dag.yaml:5:1: colour: unknown key",
				"dag.yaml:7:5: bash_command: required key is missing (operator bash)",
				"dag.yaml:9:5: bash_comand: unknown key for operator bash; did you mean bash_command?",
				"dag.yaml:10:5: retires: unknown key for operator bash; did you mean retries?",
				"dag.yaml:11:5: depends_on: unknown key for operator bash; did you mean upstream?",
				"dag.yaml:14:5: bash_command: unknown key for operator empty",
			},
		},
		{
			name: "unknown default_args key",
			src: `
dag_id: x
default_args: {retries: 1, retry_dealy: 5m}
tasks: [{task_id: a, operator: empty}]
`,
			want: []string{"dag.yaml:2:28: retry_dealy: unknown key in default_args; did you mean retry_delay?"},
		},
		{
			name: "duplicate keys",
			src: `
dag_id: x
dag_id: y
tasks: [{task_id: a, operator: empty, task_id: b}]
`,
			want: []string{
				"dag.yaml:2:1: dag_id: key is given twice (first at line 1)",
				"dag.yaml:3:39: task_id: key is given twice (first at line 3)",
			},
		},
		{
			name: "wrong types",
			src: `
dag_id: [x]
description: {a: b}
catchup: "yes"
max_active_runs: abc
max_active_tasks: 0
tags: [a, {b: c}]
params: [1]
default_args: [retries]
tasks:
  - task_id: a
    operator: bash
    bash_command: [echo]
    env: [A]
    append_env: "true"
    skip_on_exit_code: [1, two]
    retries: -1
    priority_weight: 1.5
    retry_exponential_backoff: 1
    pool: ""
    cwd: ~
`,
			want: []string{
				"dag.yaml:1:9: dag_id: wants a string, got a list",
				"dag.yaml:2:14: description: wants a string, got a mapping",
				`dag.yaml:3:10: catchup: wants a boolean, got string "yes"`,
				`dag.yaml:4:18: max_active_runs: wants an integer, got string "abc"`,
				"dag.yaml:5:19: max_active_tasks: wants 1 or more, got 0",
				"dag.yaml:6:11: tags[1]: wants a string, got a mapping",
				"dag.yaml:7:9: params: wants a mapping, got a list",
				"dag.yaml:8:15: default_args: wants a mapping, got a list",
				"dag.yaml:12:19: bash_command: wants a string, got a list",
				"dag.yaml:13:10: env: wants a mapping of strings, got a list",
				`dag.yaml:14:17: append_env: wants a boolean, got string "true"`,
				`dag.yaml:15:28: skip_on_exit_code[1]: wants an integer, got string "two"`,
				"dag.yaml:16:14: retries: wants 0 or more, got -1",
				"dag.yaml:17:22: priority_weight: wants an integer, got number 1.5",
				"dag.yaml:18:32: retry_exponential_backoff: wants a boolean, got integer 1",
				"dag.yaml:19:11: pool: wants a pool name, got an empty string",
			},
		},
		{
			name: "bad durations",
			src: `
dag_id: x
dagrun_timeout: 5 minutes
default_args: {retry_delay: -5s}
tasks:
  - {task_id: a, operator: empty, execution_timeout: [1h], max_retry_delay: 1d}
`,
			want: []string{
				`dag.yaml:2:17: dagrun_timeout: wants a duration (e.g. 30s, 5m, 1h30m or seconds), got string "5 minutes"`,
				"dag.yaml:3:29: retry_delay: wants a duration of zero or more, got -5s",
				"dag.yaml:5:54: execution_timeout: wants a duration (e.g. 30s, 5m, 1h30m or seconds), got a list",
				`dag.yaml:5:77: max_retry_delay: wants a duration (e.g. 30s, 5m, 1h30m or seconds), got string "1d"`,
			},
		},
		{
			name: "invalid ids",
			src: `
dag_id: my dag
tasks:
  - {task_id: "extract data", operator: empty}
  - {task_id: "ok-id_1.v2", operator: empty}
  - {task_id: "naïve", operator: empty}
  - {operator: empty}
`,
			want: []string{
				`dag.yaml:1:9: dag_id: "my dag" is not a valid id: use letters, digits, "-", "_" and "."`,
				`dag.yaml:3:15: task_id: "extract data" is not a valid id: use letters, digits, "-", "_" and "."`,
				`dag.yaml:5:15: task_id: "naïve" is not a valid id: use letters, digits, "-", "_" and "."`,
				"dag.yaml:6:5: task_id: required key is missing",
			},
		},
		{
			name: "tasks not a list, empty, item not a mapping, no operator",
			src: `
dag_id: x
tasks:
  - just-a-string
  - task_id: a
`,
			want: []string{
				"dag.yaml:3:5: tasks[0]: wants a task (a mapping with task_id and operator), got string \"just-a-string\"",
				"dag.yaml:4:5: operator: required key is missing",
			},
		},
		{
			name: "empty task list",
			src:  "dag_id: x\ntasks: []\n",
			want: []string{"dag.yaml:2:8: tasks: wants at least one task"},
		},
		{
			name: "duplicate task ids",
			src: `
dag_id: x
tasks:
  - task_id: extract
    operator: empty
  - task_id: extract
    operator: empty
`,
			want: []string{`dag.yaml:5:14: task_id: duplicate task id "extract" (first at line 3)`},
		},
		{
			name: "unknown upstream ids",
			src: `
dag_id: x
tasks:
  - {task_id: extract, operator: empty}
  - {task_id: load, operator: empty, upstream: [extrac, nothing_like_it, 7]}
  - {task_id: other, operator: empty, upstream: {a: b}}
`,
			want: []string{
				`dag.yaml:4:49: upstream: unknown task "extrac"; did you mean extract?`,
				`dag.yaml:4:57: upstream: unknown task "nothing_like_it"`,
				`dag.yaml:4:74: upstream: unknown task "7"`,
				"dag.yaml:5:49: upstream: wants a list of task ids, got a mapping",
			},
		},
		{
			name: "cycles",
			src: `
dag_id: x
tasks:
  - {task_id: a, operator: empty, upstream: [c]}
  - {task_id: b, operator: empty, upstream: [a]}
  - {task_id: c, operator: empty, upstream: [b]}
  - {task_id: self, operator: empty, upstream: [self]}
  - {task_id: d, operator: empty}
  - {task_id: e, operator: empty}
dependencies: ["d >> e >> d"]
`,
			want: []string{
				"dag.yaml:3:46: upstream: cycle a -> b -> c -> a",
				"dag.yaml:6:49: upstream: cycle self -> self",
				"dag.yaml:9:22: dependencies: cycle d -> e -> d",
			},
		},
		{
			name: "bad dependency chains",
			src: `
dag_id: x
tasks:
  - {task_id: extract, operator: empty}
  - {task_id: load, operator: empty}
dependencies:
  - extract >> lode
  - "extract >"
  - extract >> [load
  - extract
  - [extract, load]
  - "[] >> load"
`,
			want: []string{
				`dag.yaml:6:16: dependencies: unknown task "lode"; did you mean load?`,
				`dag.yaml:7:14: dependencies: cannot read "extract >": wants >> or <<, got ">"`,
				`dag.yaml:8:21: dependencies: cannot read "extract >> [load": wants ] to close the list`,
				`dag.yaml:9:5: dependencies: cannot read "extract": wants at least two tasks joined by >> or <<`,
				`dag.yaml:10:5: dependencies: wants a chain such as "a >> b >> c", got a list`,
				`dag.yaml:11:7: dependencies: cannot read "[] >> load": wants a task id, got "]"`,
			},
		},
		{
			name: "invalid cron and presets",
			src: `
dag_id: x
schedule: "61 * * * *"
tasks: [{task_id: a, operator: empty}]
---
`,
			want: []string{
				`dag.yaml:2:11: schedule: invalid cron expression "61 * * * *": end of range (61) above maximum (59): 61 (wants 5 fields: minute hour day-of-month month day-of-week, or a preset such as @daily)`,
			},
		},
		{
			name: "unknown preset",
			src:  "dag_id: x\nschedule: \"@dayly\"\ntasks: [{task_id: a, operator: empty}]\n",
			want: []string{`dag.yaml:2:11: schedule: unknown preset "@dayly"; did you mean @daily?`},
		},
		{
			name: "six-field cron",
			src:  "dag_id: x\nschedule: 0 0 * * * *\ntasks: [{task_id: a, operator: empty}]\n",
			want: []string{`dag.yaml:2:11: schedule: invalid cron expression "0 0 * * * *": expected exactly 5 fields, found 6: [0 0 * * * *] (wants 5 fields: minute hour day-of-month month day-of-week, or a preset such as @daily)`},
		},
		{
			name: "cron that never fires",
			src:  "dag_id: x\nschedule: 0 0 31 2 *\ntasks: [{task_id: a, operator: empty}]\n",
			want: []string{`dag.yaml:2:11: schedule: cron expression "0 0 31 2 *" never fires`},
		},
		{
			name: "unknown operator",
			src: `
dag_id: x
tasks:
  - {task_id: a, operator: bsh}
  - {task_id: b, operator: python}
`,
			want: []string{
				`dag.yaml:3:28: operator: unknown operator "bsh"; did you mean bash?`,
				`dag.yaml:4:28: operator: unknown operator "python"; known operators: bash, empty`,
			},
		},
		{
			name: "bad trigger rule",
			src: `
dag_id: x
default_args: {trigger_rule: all_sucess}
tasks:
  - {task_id: a, operator: empty, trigger_rule: whenever}
`,
			want: []string{
				`dag.yaml:2:30: trigger_rule: unknown trigger rule "all_sucess"; did you mean all_success?`,
				`dag.yaml:4:49: trigger_rule: unknown trigger rule "whenever"; use one of all_success, all_failed, all_done, one_success, one_failed, none_failed, none_failed_min_one_success, none_skipped, always`,
			},
		},
		{
			name: "invalid timezone and dates",
			src: `
dag_id: x
timezone: Mars/Olympus
start_date: 2026-13-01
end_date: yesterday
tasks: [{task_id: a, operator: empty}]
`,
			want: []string{
				`dag.yaml:2:11: timezone: "Mars/Olympus" is not an IANA timezone name (e.g. UTC, Europe/Berlin)`,
				`dag.yaml:3:13: start_date: "2026-13-01" is not a date: use YYYY-MM-DD or RFC 3339 (2006-01-02T15:04:05Z)`,
				`dag.yaml:4:11: end_date: "yesterday" is not a date: use YYYY-MM-DD or RFC 3339 (2006-01-02T15:04:05Z)`,
			},
		},
		{
			name: "end before start",
			src:  "dag_id: x\nstart_date: 2026-02-01\nend_date: 2026-01-01\ntasks: [{task_id: a, operator: empty}]\n",
			want: []string{`dag.yaml:3:11: end_date: 2026-01-01T00:00:00Z is before start_date 2026-02-01T00:00:00Z`},
		},
		{
			name: "Local timezone",
			src:  "dag_id: x\ntimezone: Local\ntasks: [{task_id: a, operator: empty}]\n",
			want: []string{`dag.yaml:2:11: timezone: "Local" is not an IANA timezone name (e.g. UTC, Europe/Berlin)`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, errs := parse(t, tc.src)
			if d != nil {
				t.Errorf("got a DAG despite errors")
			}
			got := make([]string, len(errs))
			for i, e := range errs {
				got[i] = e.Error()
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestPausedAtCreation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		parserDefault bool
		line          string
		want          bool
	}{
		{true, "", true},
		{false, "", false},
		{true, "is_paused_upon_creation: false\n", false},
		{false, "is_paused_upon_creation: true\n", true},
	} {
		p := NewParser(testRegistry())
		p.PausedAtCreation = c.parserDefault
		d, errs := p.ParseBytes("d.yaml", []byte("dag_id: d\n"+c.line+"tasks:\n  - {task_id: a, operator: empty}\n"))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if d.PausedAtCreation != c.want {
			t.Errorf("default %v, %q: PausedAtCreation = %v, want %v", c.parserDefault, c.line, d.PausedAtCreation, c.want)
		}
	}
}

// TestParseKeepsNodesForOperatorsThatDecodeThem: a task whose operator's
// schema sets KeepNodes keeps each option's YAML node, with its position.
func TestParseKeepsNodesForOperatorsThatDecodeThem(t *testing.T) {
	t.Parallel()
	reg := testRegistry()
	reg.Register(&OperatorSchema{Name: "pod", KeepNodes: true, Options: []Option{
		{Name: "image", Kind: KindString, Required: true},
		{Name: "env", Kind: KindStringMap},
	}})
	d, errs := NewParser(reg).ParseBytes("dag.yaml", []byte(`dag_id: nodes
tasks:
  - task_id: p
    operator: pod
    image: alpine
    env: {A: "1"}
  - task_id: b
    operator: bash
    bash_command: "true"
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if n := d.Task("p").Nodes["env"]; n == nil || n.Kind != yaml.MappingNode || n.Line != 6 || n.Column != 10 {
		t.Errorf("p.Nodes[env] = %+v, want the mapping at 6:10", n)
	}
	if n := d.Task("p").Nodes["image"]; n == nil || n.Value != "alpine" {
		t.Errorf("p.Nodes[image] = %+v", n)
	}
	if d.Task("b").Nodes != nil {
		t.Errorf("b.Nodes = %v, want nil (bash does not keep nodes)", d.Task("b").Nodes)
	}
}
