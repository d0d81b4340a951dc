package dag

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestTemplateErrorsNameTheOption(t *testing.T) {
	t.Parallel()
	_, errs := parse(t, `
dag_id: x
tasks:
  - task_id: a
    operator: bash
    bash_command: echo {{ ds
    env:
      OK: "{{ ds }}"
      BAD: "{{ params.x"
    cwd: "{{ not templated"
`)
	if len(errs) != 2 {
		t.Fatalf("want 2 errors, got:\n%v", errs)
	}
	for i, want := range []string{"dag.yaml:5:", "dag.yaml:8:"} {
		if !strings.HasPrefix(errs[i].Error(), want) {
			t.Errorf("error %d = %q, want it at %s", i, errs[i], want)
		}
	}
	if !strings.Contains(errs[0].Msg, "bash_command: template does not parse: ") {
		t.Errorf("error = %q, want it to name bash_command", errs[0])
	}
	if !strings.Contains(errs[1].Msg, "env.BAD: template does not parse: ") {
		t.Errorf("error = %q, want it to name env.BAD", errs[1])
	}
}

// TestScalarPosition maps positions inside a scalar (as a template engine
// reports them) back to the file.
func TestScalarPosition(t *testing.T) {
	t.Parallel()
	src := `plain: echo {{ x
single: 'it''s {{ x'
double: "a {{ x"
escaped: "\t{{ x"
literal: |
  line one
    {{ x
folded: >
  a
  {{ x
`
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Content[0]
	node := func(key string) *yaml.Node {
		for i := 0; i < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		t.Fatalf("no key %s", key)
		return nil
	}
	s := &source{data: []byte(src)}
	for _, tc := range []struct {
		key               string
		line, col         int // inside the value
		wantLine, wantCol int
	}{
		{"plain", 1, 6, 1, 13},
		{"single", 1, 6, 2, 9}, // '' before the column: falls back to the node
		{"double", 1, 3, 3, 12},
		{"escaped", 1, 2, 4, 10}, // \t before the column: falls back
		{"literal", 2, 3, 7, 5},
		{"literal", 1, 1, 6, 3},
		{"folded", 2, 1, 8, 9}, // folded: falls back
		{"plain", 3, 1, 1, 8},  // no such line: falls back
	} {
		line, col := s.scalarPosition(node(tc.key), tc.line, tc.col)
		if line != tc.wantLine || col != tc.wantCol {
			t.Errorf("%s %d:%d -> %d:%d, want %d:%d", tc.key, tc.line, tc.col, line, col, tc.wantLine, tc.wantCol)
		}
	}
}

func TestWalkStrings(t *testing.T) {
	t.Parallel()
	in := map[string]any{
		"cmd":  "echo {{ ds }}",
		"args": []any{"a", 1, map[string]any{"b": "{{ x }}"}},
		"env":  map[string]string{"K": "v"},
		"list": []string{"s"},
		"n":    nil,
	}
	out, err := WalkStrings(in, func(s string) (string, error) { return strings.ToUpper(s), nil })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"cmd":  "ECHO {{ DS }}",
		"args": []any{"A", 1, map[string]any{"b": "{{ X }}"}},
		"env":  map[string]string{"K": "V"},
		"list": []string{"S"},
		"n":    nil,
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("WalkStrings = %#v", out)
	}
	if in["cmd"] != "echo {{ ds }}" {
		t.Errorf("WalkStrings changed its input")
	}

	boom := errors.New("boom")
	_, err = WalkStrings(in, func(s string) (string, error) {
		if s == "{{ x }}" {
			return "", boom
		}
		return s, nil
	})
	if !errors.Is(err, boom) || err.Error() != "args[2].b: boom" {
		t.Errorf("error = %v, want args[2].b: boom", err)
	}
	if _, err := WalkStrings("x", func(string) (string, error) { return "", fmt.Errorf("top") }); err == nil || err.Error() != "top" {
		t.Errorf("error = %v, want top", err)
	}
}

// TestDeeplyNestedTemplateIsOneError: a template nested deeply enough to
// overflow the parser's stack is refused before parsing, at its position.
func TestDeeplyNestedTemplateIsOneError(t *testing.T) {
	t.Parallel()
	_, errs := parse(t, `
dag_id: x
tasks:
  - task_id: a
    operator: bash
    bash_command: "echo {{ `+strings.Repeat("(", 100_000)+`1`+strings.Repeat(")", 100_000)+` }}"
`)
	if len(errs) != 1 {
		t.Fatalf("want 1 error, got %d:\n%.500v", len(errs), errs)
	}
	// The 65th "(" is column 20 + 8 + 64 of line 5.
	if want := "dag.yaml:5:92: bash_command: template does not parse: brackets nested deeper than 64 levels"; !strings.HasPrefix(errs[0].Error(), want) {
		t.Fatalf("error = %.300q, want it to start with %q", errs[0].Error(), want)
	}
}

func TestStaticTemplateChecks(t *testing.T) {
	t.Parallel()
	_, errs := parse(t, `
dag_id: x
params: {table: orders}
default_args: {retries: 2}
tasks:
  - task_id: a
    operator: bash
    bash_command: |
      echo {{ params.tabel }} {{ params.table }}
      echo {{ prev_ds }}
    env:
      DAY: "{{ ds }}"
  - task_id: b
    operator: bash
    check_templates: false
    bash_command: echo {{ params.built_at_run_time }} {{ unknown_but_allowed }}
`)
	want := []string{
		`dag.yaml:8:15: bash_command: params.tabel is not declared; did you mean "table"?`,
		`dag.yaml:9:15: bash_command: unknown name "prev_ds"`,
	}
	if len(errs) != len(want) {
		t.Fatalf("want %d errors, got:\n%v", len(want), errs)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want it to start with %q", i, errs[i], w)
		}
	}
	// Without declared params, params.x may come from the run's conf.
	mustParse(t, `
dag_id: y
tasks:
  - {task_id: a, operator: bash, bash_command: "echo {{ params.anything }}"}
`)
}
