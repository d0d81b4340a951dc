package dag

import (
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOperatorChecks runs an operator's own checks: Option.Check after the
// kind check, then OperatorSchema.Validate when every option passed.
func TestOperatorChecks(t *testing.T) {
	t.Parallel()
	registry := NewRegistry(&OperatorSchema{
		Name: "pod",
		Options: []Option{
			{Name: "image", Kind: KindString, Required: true},
			{Name: "resources", Kind: KindMap, Check: func(n *yaml.Node) []*Error {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if k := n.Content[i]; k.Value != "limits" && k.Value != "requests" {
						return []*Error{{Line: k.Line, Column: k.Column, Msg: "resources." + k.Value + ": unknown field"}}
					}
				}
				return nil
			}},
			{Name: "cmds", Kind: KindStringList, Templated: true},
			{Name: "timeout", Kind: KindDuration},
			{Name: "anything", Kind: KindAny},
		},
		Validate: func(task *Task) []*Error {
			if task.Options["image"] == "forbidden" {
				return []*Error{{Msg: "image: forbidden is not allowed"}}
			}
			return nil
		},
	})
	parse := func(src string) (*DAG, []string) {
		d, errs := NewParser(registry).ParseBytes("pod.yaml", []byte(strings.TrimPrefix(src, "\n")))
		var got []string
		for _, e := range errs {
			got = append(got, e.Error())
		}
		return d, got
	}

	_, got := parse(`
dag_id: p
tasks:
  - task_id: a
    operator: pod
    image: alpine
    resources: {limits: {cpu: 1}, limitz: {}}
    cmds: [echo, 3]
    timeout: 1x
  - task_id: b
    operator: pod
    image: forbidden
`)
	want := []string{
		"pod.yaml:6:35: resources.limitz: unknown field",
		`pod.yaml:8:14: timeout: wants a duration (e.g. 30s, 5m, 1h30m or seconds), got string "1x"`,
		"pod.yaml:9:5: image: forbidden is not allowed",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	d, got := parse(`
dag_id: p
tasks:
  - task_id: a
    operator: pod
    image: 3.10
    cmds: [echo, 3]
    timeout: 90
    anything: {x: [1, "two"]}
    resources: ~
`)
	if len(got) > 0 {
		t.Fatalf("errors: %v", got)
	}
	wantOptions := map[string]any{
		"image":     "3.10",
		"cmds":      []any{"echo", "3"},
		"timeout":   90,
		"anything":  map[string]any{"x": []any{1, "two"}},
		"resources": nil,
	}
	if opts := d.Tasks[0].Options; !reflect.DeepEqual(opts, wantOptions) {
		t.Errorf("Options = %#v", opts)
	}
}

// TestHostileYAMLDoesNotHang covers alias cycles and alias bombs.
func TestHostileYAMLDoesNotHang(t *testing.T) {
	t.Parallel()
	bomb := `
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
`
	for _, tc := range []struct{ name, src, want string }{
		{"alias cycle in an option", "dag_id: x\ntasks:\n  - {task_id: a, operator: empty, extra: &l [*l]}\n",
			"dag.yaml:3:46: extra: values nest deeper than 256 levels (does an alias refer to itself?)"},
		{"merge cycle", "dag_id: x\ntasks:\n  - &t {task_id: a, operator: empty, <<: *t}\n",
			"dag.yaml:3:42: <<: merges a mapping into itself"},
		{"alias bomb in params", bomb + "dag_id: x\nparams: {bomb: *h}\ntasks: [{task_id: a, operator: empty}]\n",
			"dag.yaml:10:9: params: the file expands to more than 1048576 values (aliases of aliases?)"},
	} {
		_, errs := parse(t, tc.src)
		found := false
		for _, e := range errs {
			found = found || e.Error() == tc.want
			if strings.Contains(e.Msg, "internal error") {
				t.Errorf("%s: %v", tc.name, e)
			}
		}
		if !found {
			t.Errorf("%s: errors:\n%v\nwant among them: %s", tc.name, errs, tc.want)
		}
	}
}
