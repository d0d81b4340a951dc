package kubernetes

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/templating"
)

// testConns is a fixed set of connections.
type testConns map[string]map[string]any

func (c testConns) Connection(id string) (map[string]any, bool) {
	m, ok := c[id]
	return m, ok
}

// parseTask turns inline YAML options into a task, as the parser would.
func parseTask(t testing.TB, id, src string) *dag.Task {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("parse options: %v", err)
	}
	m := doc.Content[0]
	task := &dag.Task{ID: id, Operator: OperatorName, Options: map[string]any{}, Nodes: map[string]*yaml.Node{},
		Line: m.Line, Column: m.Column}
	for i := 0; i+1 < len(m.Content); i += 2 {
		var v any
		if err := m.Content[i+1].Decode(&v); err != nil {
			t.Fatalf("decode %s: %v", m.Content[i].Value, err)
		}
		task.Options[m.Content[i].Value] = v
		task.Nodes[m.Content[i].Value] = m.Content[i+1]
	}
	return task
}

// fakeRender replaces "{{ key }}" with values from vars: enough to test that
// rendering happens before decoding, without the template engine.
func fakeRender(vars map[string]string) renderFunc {
	return func(_ context.Context, src string, _ *templating.Context) (string, error) {
		out := src
		for k, v := range vars {
			out = strings.ReplaceAll(out, "{{ "+k+" }}", v)
		}
		if strings.Contains(out, "{{") {
			return "", fmt.Errorf("undefined name in %q", src)
		}
		return out, nil
	}
}

// schemaRegistry holds this operator and a stand-in bash schema, for parsing
// whole example files.
func schemaRegistry(op *Operator) *dag.Registry {
	return dag.NewRegistry(op.Schema(), &dag.OperatorSchema{Name: "bash", Options: []dag.Option{
		{Name: "bash_command", Kind: dag.KindString, Required: true, Templated: true},
		{Name: "env", Kind: dag.KindStringMap, Templated: true},
		{Name: "cwd", Kind: dag.KindString},
		{Name: "skip_on_exit_code", Kind: dag.KindIntList},
	}})
}

func fmtValue(v any) string { return fmt.Sprint(v) }
