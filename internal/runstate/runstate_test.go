package runstate

import (
	"reflect"
	"sort"
	"testing"

	"github.com/podflow/podflow/dag"
)

func task(id string, rule dag.TriggerRule, up ...string) *dag.Task {
	return &dag.Task{ID: id, TriggerRule: rule, Upstream: up}
}

func TestDecide(t *testing.T) {
	two := func(rule dag.TriggerRule) *dag.DAG {
		return &dag.DAG{Tasks: []*dag.Task{task("a", dag.AllSuccess), task("b", dag.AllSuccess), task("c", rule, "a", "b")}}
	}
	cases := []struct {
		name   string
		d      *dag.DAG
		states map[string]string
		want   Decision
	}{
		{"roots are ready at once, whatever their rule", &dag.DAG{Tasks: []*dag.Task{task("a", dag.OneSuccess), task("b", dag.AllFailed), task("c", dag.AllSuccess, "a")}},
			nil, Decision{Queue: []string{"a", "b"}}},
		{"all_success waits", two(dag.AllSuccess), map[string]string{"a": Success, "b": Running}, Decision{}},
		{"all_success runs", two(dag.AllSuccess), map[string]string{"a": Success, "b": Success}, Decision{Queue: []string{"c"}}},
		{"all_success fails early", two(dag.AllSuccess), map[string]string{"a": Failed, "b": Running}, Decision{UpstreamFailed: []string{"c"}}},
		{"all_success skips", two(dag.AllSuccess), map[string]string{"a": Skipped, "b": Success}, Decision{Skip: []string{"c"}, RunState: RunSuccess}},
		{"one_success runs early", two(dag.OneSuccess), map[string]string{"a": Success, "b": Running}, Decision{Queue: []string{"c"}}},
		{"one_failed runs early", two(dag.OneFailed), map[string]string{"a": Failed, "b": Running}, Decision{Queue: []string{"c"}}},
		{"one_failed skips", two(dag.OneFailed), map[string]string{"a": Success, "b": Success}, Decision{Skip: []string{"c"}, RunState: RunSuccess}},
		{"all_done", two(dag.AllDone), map[string]string{"a": Failed, "b": Skipped}, Decision{Queue: []string{"c"}}},
		{"all_failed", two(dag.AllFailed), map[string]string{"a": Failed, "b": UpstreamFailed}, Decision{Queue: []string{"c"}}},
		{"all_failed skips on a success", two(dag.AllFailed), map[string]string{"a": Success, "b": Running}, Decision{Skip: []string{"c"}}},
		{"none_failed with skipped", two(dag.NoneFailed), map[string]string{"a": Skipped, "b": Success}, Decision{Queue: []string{"c"}}},
		{"none_failed_min_one_success all skipped", two(dag.NoneFailedMinOneSuccess), map[string]string{"a": Skipped, "b": Skipped}, Decision{Skip: []string{"c"}, RunState: RunSuccess}},
		{"none_skipped", two(dag.NoneSkipped), map[string]string{"a": Skipped, "b": Success}, Decision{Skip: []string{"c"}, RunState: RunSuccess}},
		{"always", two(dag.Always), map[string]string{"a": Running, "b": None}, Decision{Queue: []string{"b", "c"}}},
		{"failed leaf fails the run", two(dag.AllSuccess), map[string]string{"a": Success, "b": Success, "c": Failed}, Decision{RunState: RunFailed}},
		{"failure in the middle with a successful leaf", &dag.DAG{Tasks: []*dag.Task{task("a", dag.AllSuccess), task("b", dag.AllDone, "a")}},
			map[string]string{"a": Failed, "b": Success}, Decision{RunState: RunSuccess}},
		{"upstream_failed propagates in one pass", &dag.DAG{Tasks: []*dag.Task{task("a", dag.AllSuccess), task("b", dag.AllSuccess, "a"), task("c", dag.AllSuccess, "b")}},
			map[string]string{"a": Failed}, Decision{UpstreamFailed: []string{"b", "c"}, RunState: RunFailed}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Decide(c.d, c.states)
			for _, l := range [][]string{got.Queue, got.UpstreamFailed, got.Skip} {
				sort.Strings(l)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Decide = %+v, want %+v", got, c.want)
			}
		})
	}
}
