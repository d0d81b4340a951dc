package dag

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// examplesDir holds the example DAGs shipped with podflow.
const examplesDir = "../examples/dags"

// bashExamples are the example DAGs that use only the operators the tests
// declare (the pod examples need the kubernetes_pod operator's schema and
// are validated by `podflow validate examples/dags`).
var bashExamples = []string{"etl_xcom.yaml", "params_and_trigger_rules.yaml", "nightly_berlin.yaml", "mapping.yaml", "task_groups.yaml",
	"assets_producer.yaml", "assets_consumer.yaml"}

func TestExamplesAreValid(t *testing.T) {
	t.Parallel()
	paths := make([]string, len(bashExamples))
	for i, name := range bashExamples {
		paths[i] = filepath.Join(examplesDir, name)
	}
	folder := NewParser(testRegistry()).LoadPaths(paths...)
	if errs := folder.AllErrors(); len(errs) > 0 {
		t.Fatalf("examples do not validate:\n%v", errs)
	}
	if len(folder.DAGs) != len(bashExamples) {
		t.Fatalf("found %d example DAGs, want %d", len(folder.DAGs), len(bashExamples))
	}
	for _, d := range folder.DAGs {
		if len(d.TopoOrder()) != len(d.Tasks) {
			t.Errorf("%s: TopoOrder lost tasks", d.ID)
		}
	}
}

// FuzzParse checks the parser never panics (a panic is recovered and
// reported as an internal error, which fails the fuzz test too) and that
// a DAG comes back exactly when there are no errors.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		"",
		"dag_id: x\ntasks: [{task_id: a, operator: empty}]\n",
		"a: &a [*a]\n",
		"dag_id: x\ntasks:\n  - &t {task_id: a, operator: bash, bash_command: '{{ x', <<: *t}\n",
		"dag_id: x\ntasks: [{task_id: a, operator: empty}, {task_id: b, operator: empty}]\ndependencies: ['a >> [b, a] << b']\n",
		"dag_id: x\ntasks: [{task_id: a, operator: bash, expand: {bash_command: [x, y], cwd: '{{ params.d }}'}, map_index_template: '{{ ti.map_index }}'}]\n",
		"dag_id: x\ntask_groups: [{group_id: g, upstream: [h], tasks: [{task_id: a, operator: empty}], task_groups: [{group_id: h, tasks: [{task_id: b, operator: empty}]}]}]\n",
		"dag_id: x\nschedule: '0 0 31 2 *'\ntimezone: Europe/Berlin\nstart_date: 2026-03-29T02:30:00\ntasks: [{task_id: a, operator: empty}]\n",
	} {
		f.Add([]byte(seed))
	}
	p := NewParser(testRegistry())
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		defer func() {
			// A file that takes seconds to parse would stall the scheduler.
			if el := time.Since(start); el > 10*time.Second {
				t.Fatalf("parsing took %v", el)
			}
		}()
		d, errs := p.ParseBytes("fuzz.yaml", data)
		if (d == nil) == (len(errs) == 0) {
			t.Fatalf("DAG %v with %d errors", d != nil, len(errs))
		}
		for _, e := range errs {
			if e.Line < 1 || e.Column < 1 || e.Msg == "" {
				t.Fatalf("error without a position or message: %#v", e)
			}
			if len(e.Msg) > 24 && e.Msg[:24] == "internal error while par" {
				t.Fatalf("parser panicked: %s", e.Msg)
			}
		}
		if d != nil {
			d.TopoOrder()
			d.CatchupWindow(nil, d.StartDate.AddDate(0, 0, 3))
		}
	})
}
