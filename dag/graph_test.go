package dag

import (
	"reflect"
	"testing"
)

func taskIDs(tasks []*Task) []string {
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.ID
	}
	return ids
}

func TestGraph(t *testing.T) {
	t.Parallel()
	d := mustParse(t, `
dag_id: g
tasks:
  - {task_id: load, operator: empty, upstream: [transform_a, transform_b]}
  - {task_id: transform_b, operator: empty, upstream: [extract]}
  - {task_id: extract, operator: empty}
  - {task_id: transform_a, operator: empty, upstream: [extract]}
  - {task_id: report, operator: empty, upstream: [load]}
  - {task_id: lonely, operator: empty}
`)
	if got, want := taskIDs(d.TopoOrder()), []string{"extract", "transform_b", "transform_a", "load", "report", "lonely"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TopoOrder = %v, want %v", got, want)
	}
	if got, want := d.Downstream("extract"), []string{"transform_b", "transform_a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Downstream = %v, want %v", got, want)
	}
	if got, want := d.DownstreamAll("extract"), []string{"load", "transform_b", "transform_a", "report"}; !reflect.DeepEqual(got, want) {
		t.Errorf("DownstreamAll = %v, want %v", got, want)
	}
	if got, want := d.UpstreamAll("report"), []string{"load", "transform_b", "extract", "transform_a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("UpstreamAll = %v, want %v", got, want)
	}
	if got := d.Downstream("report"); got != nil {
		t.Errorf("Downstream(report) = %v", got)
	}
}

func TestTopoOrderOfCyclicHandBuiltDAG(t *testing.T) {
	t.Parallel()
	d := &DAG{Tasks: []*Task{{ID: "a", Upstream: []string{"b"}}, {ID: "b", Upstream: []string{"a"}}, {ID: "c"}}}
	if got, want := taskIDs(d.TopoOrder()), []string{"c", "a", "b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TopoOrder = %v, want %v", got, want)
	}
}
