package kubernetes

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/flowtest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestDryRunExamples: the manifest of every kubernetes_pod task of every
// example DAG, as `podflow dry-run` prints it (fixed time and name suffix).
func TestDryRunExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../examples/dags/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	op := New(WithNameSuffix(func() string { return "abcd1234" }), WithInClusterNamespace(func() string { return "" }))
	parser := dag.NewParser(schemaRegistry(op))
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	seen := 0
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(src, []byte("operator: kubernetes_pod")) {
			continue
		}
		seen++
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			d, errs := parser.ParseFile(file)
			if len(errs) > 0 {
				t.Fatalf("parse %s:\n%v", file, errs)
			}
			var out bytes.Buffer
			for _, task := range d.Tasks {
				if task.Operator != OperatorName {
					continue
				}
				tc := DryRunContext(d, task, nil, now, nil, flowtest.NewLog())
				pod, err := op.DryRun(context.Background(), tc)
				if err != nil {
					t.Fatalf("dry-run %s: %v", task.ID, err)
				}
				b, err := ManifestYAML(pod)
				if err != nil {
					t.Fatal(err)
				}
				out.WriteString("---\n# task " + task.ID + "\n")
				out.Write(b)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestDryRunExamples -update)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("dry-run of %s differs from %s (rerun with -update if intended):\n%s", file, golden, out.String())
			}
		})
	}
	if seen < 4 {
		t.Errorf("found %d example DAGs with pod tasks, want at least 4", seen)
	}
}
