package dag

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// testRegistry declares the operators tests use: bash as the real bash
// operator declares it, and empty (no options).
func testRegistry() *Registry {
	return NewRegistry(
		&OperatorSchema{Name: "bash", Options: []Option{
			{Name: "bash_command", Kind: KindString, Required: true, Templated: true},
			{Name: "env", Kind: KindStringMap, Templated: true},
			{Name: "append_env", Kind: KindBool},
			{Name: "cwd", Kind: KindString},
			{Name: "skip_on_exit_code", Kind: KindIntList},
			{Name: "do_xcom_push", Kind: KindBool},
			{Name: "output_encoding", Kind: KindString},
			{Name: "output_processor", Kind: KindString, Check: func(*yaml.Node) []*Error { return nil }},
		}},
		&OperatorSchema{Name: "empty"},
	)
}

// parse parses inline YAML as dag.yaml; a leading newline is dropped so
// the YAML can start on the line after the backquote.
func parse(t *testing.T, src string) (*DAG, Errors) {
	t.Helper()
	return NewParser(testRegistry()).ParseBytes("dag.yaml", []byte(strings.TrimPrefix(src, "\n")))
}

// mustParse parses inline YAML that must be valid.
func mustParse(t *testing.T, src string) *DAG {
	t.Helper()
	d, errs := parse(t, src)
	if len(errs) > 0 {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	return d
}
