package branch

import (
	"reflect"
	"strings"
	"testing"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/empty"
)

// diamond: branch → {a, b, join}; a → a2 → join; b → join.
const diamond = `
dag_id: d
tasks:
  - {task_id: pick, operator: branch, branch: a}
  - {task_id: a, operator: empty, upstream: [pick]}
  - {task_id: a2, operator: empty, upstream: [a]}
  - {task_id: b, operator: empty, upstream: [pick]}
  - {task_id: join, operator: empty, upstream: [pick, a2, b], trigger_rule: none_failed_min_one_success}
  - {task_id: after, operator: empty, upstream: [join]}
`

func parse(t *testing.T, src string) *dag.DAG {
	t.Helper()
	reg := operators.NewRegistry(empty.New(), Branch{}, ShortCircuit{})
	d, errs := dag.NewParser(reg.Schemas()).ParseBytes("d.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return d
}

func TestBranchSkips(t *testing.T) {
	t.Parallel()
	d := parse(t, diamond)
	cases := []struct {
		chosen []string
		skip   []string
		err    string
	}{
		{[]string{"a"}, []string{"b"}, ""}, // join is downstream of a: not skipped (skip_all_except)
		{[]string{"b"}, []string{"a"}, ""}, // join is downstream of b too
		{[]string{"join"}, []string{"a", "b"}, ""},
		{[]string{"a", "b"}, nil, ""},
		{nil, []string{"a", "b", "join"}, ""},
		{[]string{"a2"}, nil, `branch chose "a2", which is not a direct downstream task of pick (those are: a, b, join)`},
		{[]string{"nope"}, nil, `branch chose "nope"`},
	}
	for _, c := range cases {
		skip, err := BranchSkips(d, d.Task("pick"), append([]string(nil), c.chosen...))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("chosen %v: error %v, want %q", c.chosen, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(skip, c.skip) {
			t.Errorf("chosen %v: skip %v (%v), want %v", c.chosen, skip, err, c.skip)
		}
	}
}

func TestBranchInsideAGroupTakesRelativeIDs(t *testing.T) {
	t.Parallel()
	d := parse(t, `
dag_id: g
task_groups:
  - group_id: tg
    tasks:
      - {task_id: pick, operator: branch, branch: x}
      - {task_id: x, operator: empty, upstream: [pick]}
      - {task_id: y, operator: empty, upstream: [pick]}
`)
	skip, err := BranchSkips(d, d.Task("tg.pick"), []string{"x"})
	if err != nil || !reflect.DeepEqual(skip, []string{"tg.y"}) {
		t.Fatalf("skip %v, %v", skip, err)
	}
}

func TestChosenIDs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []string
		err  bool
	}{
		{"full_load", []string{"full_load"}, false},
		{"  incremental\n", []string{"incremental"}, false},
		{"['a', 'b']", []string{"a", "b"}, false},
		{`["a"]`, []string{"a"}, false},
		{"None", nil, false},
		{"", nil, false},
		{"[1, 2]", nil, true},
		{"['a'", nil, true},
	}
	for _, c := range cases {
		got, err := ChosenIDs(c.in)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ChosenIDs(%q) = %v, %v; want %v (error %v)", c.in, got, err, c.want, c.err)
		}
	}
}

func TestShortCircuitSkipsAndFalsy(t *testing.T) {
	t.Parallel()
	d := parse(t, `
dag_id: s
tasks:
  - {task_id: check, operator: short_circuit, condition: "{{ params.x }}"}
  - {task_id: a, operator: empty, upstream: [check]}
  - {task_id: b, operator: empty, upstream: [a]}
  - {task_id: c, operator: empty, upstream: [b], trigger_rule: all_done}
`)
	if got := ShortCircuitSkips(d, "check", true); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("ignore_downstream_trigger_rules true: %v", got)
	}
	if got := ShortCircuitSkips(d, "check", false); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("ignore_downstream_trigger_rules false: %v", got)
	}
	for s, want := range map[string]bool{"": true, "False": true, "0": true, "[]": true, "{}": true, "None": true,
		" [] ": true, "True": false, "[1]": false, "yes": false, "1": false, "false ": true} {
		if Falsy(s) != want {
			t.Errorf("Falsy(%q) = %v", s, !want)
		}
	}
}
