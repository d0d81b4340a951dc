package triggerer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/runstate"
)

// Given a task that lists six items, when a deferrable pod task maps over
// them (at most 3 at a time) and instance 2 fails its first try, then each
// instance ran in a pod of its own labelled with its map_index, instance 2
// succeeded on its retry, and the collector receives the six pods' XComs
// in map_index order.
func TestMappedDeferrablePodsWithARetry(t *testing.T) {
	t.Parallel()
	b := setup(t).withCluster()
	b.DAG("fanout_pods", fmt.Sprintf(`dag_id: fanout_pods
tasks:
  - {task_id: list_items, operator: bash, bash_command: "echo '[[\"a\"], [\"b\"], [\"c\"], [\"d\"], [\"e\"], [\"f\"]]'"}
  - task_id: each
    operator: kubernetes_pod
    upstream: [list_items]
    image: alpine
    namespace: %s
    config_file: %s
    on_finish_action: keep_pod
    deferrable: true
    do_xcom_push: true
    retries: 1
    retry_delay: 1s
    max_active_tis_per_dagrun: 3
    cmds: ["sh", "-c", "if [ {{ ti.map_index }} = 2 ] && [ {{ ti.try_number }} = 1 ]; then echo failing once; exit 3; fi; mkdir -p /airflow/xcom; echo \"\\\"$0-{{ ti.map_index }}\\\"\" > /airflow/xcom/return.json"]
    expand:
      arguments: "{{ ti.xcom_pull('list_items') }}"
  - {task_id: collect, operator: bash, upstream: [each], bash_command: "echo got {{ ti.xcom_pull('each') | join(',') }}"}
`, b.ns, b.kubeconfig))
	b.Scheduler(workers(4))
	b.Triggerer(limits(100, 2*time.Second))
	run, tis := b.waitRunTasks("fanout_pods", b.Trigger("fanout_pods", ""), 4*time.Minute)
	if run.State != runstate.RunSuccess {
		for _, ti := range tis {
			t.Logf("%s[%d] %s %s\n%s", ti.TaskID, ti.MapIndex, ti.State, ti.Error, b.TryLog(ti, ti.TryNumber))
		}
		t.Fatalf("run %s", run.State)
	}
	instances := 0
	for _, ti := range tis {
		switch {
		case ti.TaskID == "each":
			instances++
			want := 1
			if ti.MapIndex == 2 {
				want = 2
			}
			if ti.TryNumber != want || ti.State != runstate.Success {
				t.Errorf("instance %d: try %d %s, want try %d success", ti.MapIndex, ti.TryNumber, ti.State, want)
			}
			if h := b.History(ti); !strings.Contains(h, "deferred") {
				t.Errorf("instance %d did not defer: %s", ti.MapIndex, h)
			}
		case ti.TaskID == "collect":
			if log := b.TryLog(ti, ti.TryNumber); !strings.Contains(log, "got a-0,b-1,c-2,d-3,e-4,f-5") {
				t.Errorf("collect's log:\n%s", log)
			}
		}
	}
	if instances != 6 {
		t.Errorf("%d instances, want 6", instances)
	}
	pods, err := b.client.CoreV1().Pods(b.ns).List(b.Ctx, metav1.ListOptions{LabelSelector: "dag_id=fanout_pods,task_id=each"})
	if err != nil {
		t.Fatal(err)
	}
	byIndex := map[string]int{}
	names := map[string]bool{}
	for _, p := range pods.Items {
		byIndex[p.Labels["map_index"]]++
		names[p.Name] = true
	}
	if len(pods.Items) != 7 || len(names) != 7 || byIndex["2"] != 2 {
		t.Errorf("pods: %d (%d names), per map_index %v; want 7 pods (instance 2 twice), all named apart", len(pods.Items), len(names), byIndex)
	}
	// max_active_tis_per_dagrun holds for deferred pods too: by the pods'
	// own container times, never more than 3 ran at once.
	iv := b.podIntervals(t, "fanout_pods")
	peak := 0
	for _, a := range iv {
		n := 0
		for _, c := range iv {
			if !c[0].After(a[0]) && c[1].After(a[0]) {
				n++
			}
		}
		peak = max(peak, n)
	}
	if peak > 3 {
		t.Errorf("%d pods ran at once, limit 3", peak)
	}
}
