package alerts_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/operators/builtin"
)

// Pod tasks on the test cluster: a pod that exits non-zero (run by the
// worker, and deferred to the triggerer) and a pod deleted while it runs
// each fire their failure callback once.
func TestFailingPods(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on a Kubernetes cluster (not in -short mode)")
	}
	t.Parallel()
	kubeconfig, ns, client := kubetest.Kubeconfig(t), kubetest.Namespace(t), kubetest.Client(t)
	ops := builtin.Registry(builtin.Deps{Clients: kube.NewClients()})
	e := &env{Bundle: flowtest.New(t, ops), hook: newReceiver(t)}
	pod := func(id, cmd, extra string) string {
		return fmt.Sprintf("  - task_id: %s\n    operator: kubernetes_pod\n    image: alpine\n    namespace: %s\n    config_file: %s\n    cmds: [sh, -c, %q]\n%s",
			id, ns, kubeconfig, cmd, extra)
	}
	e.DAG("pods", "dag_id: pods\ndefault_args: {on_failure_callback: [ops]}\ntasks:\n"+
		pod("exits", "exit 5", "")+
		pod("exits-deferred", "exit 6", "    deferrable: true\n")+
		pod("deleted", "sleep 300", ""))
	e.scheduler(e.deliverer(nil), nil)
	e.Triggerer(nil)
	runID := e.Trigger("pods", "")
	pods := flowtest.WaitPods(t, client, ns, "task_id=deleted", 2*time.Minute, func(ps []corev1.Pod) bool {
		return len(ps) == 1 && ps[0].Status.Phase == "Running"
	})
	if err := client.CoreV1().Pods(ns).Delete(e.Ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := e.WaitRun("pods", runID, 3*time.Minute); st != runstate.RunFailed {
		t.Fatalf("run %s", st)
	}
	e.settle(time.Minute)
	ds := e.hook.deliveries()
	wantKeys(t, keys(ds), "exits failure 1", "exits-deferred failure 1", "deleted failure 1")
	for _, d := range ds {
		if !d.sigOK || d.msg.State != "failed" || d.msg.Error == "" {
			t.Errorf("alert %+v (signature ok %v)", d.msg, d.sigOK)
		}
		t.Logf("%s: %s", d.msg.TaskID, d.msg.Error)
		if d.msg.TaskID == "deleted" && !strings.Contains(strings.ToLower(d.msg.Error), "delet") {
			t.Errorf("the deleted pod's error %q does not say so", d.msg.Error)
		}
	}
}
