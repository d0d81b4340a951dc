package triggerer_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/operators/builtin"
)

// runChildScheduler is a scheduler process (to kill -9 it).
func runChildScheduler(c *flowtest.Child) error {
	s := scheduler.New(c.Store, builtin.Registry(builtin.Deps{Clients: kube.NewClients()}), scheduler.Config{
		DagsFolder: c.Dir, Workers: 4, ZombieThreshold: 2 * time.Second,
		LoopInterval: 100 * time.Millisecond, SyncInterval: 100 * time.Millisecond, Logger: c.Logger})
	c.Ready(s.ID())
	return s.Run(c.Ctx)
}

// Given a pod task running on a scheduler, when that scheduler is killed -9
// and another one takes the task over (zombie → retry), then the retry
// re-attaches to the running pod: exactly one pod ever existed for the task.
func TestKilledWorkerReattachesToItsPod(t *testing.T) {
	t.Parallel()
	b := setup(t).withCluster()
	b.DAG("restart", "dag_id: restart\ndefault_args: {retries: 2, retry_delay: 0}\ntasks:\n"+
		b.podTask("long", "sleep 8; echo finished", "    get_logs: true\n"))
	child := b.StartChild("scheduler")
	runID := b.Trigger("restart", "")
	flowtest.WaitPods(t, b.client, b.ns, "dag_id=restart", time.Minute, func(pods []corev1.Pod) bool {
		return len(pods) == 1 && pods[0].Status.Phase == corev1.PodRunning
	})
	child.Kill()

	b.Scheduler(func(c *scheduler.Config) { c.Workers, c.ZombieThreshold = 4, 2*time.Second })
	run, tis := b.waitRunTasks("restart", runID, 2*time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s: %s", run.State, tis[0].Error)
	}
	ti := tis[0]
	if ti.TryNumber != 2 {
		t.Errorf("try %d, want 2 (the zombie's try, then the re-attaching one)", ti.TryNumber)
	}
	log := b.TryLog(ti, ti.TryNumber)
	if !strings.Contains(log, "re-attaching to pod") || !strings.Contains(log, "finished") {
		t.Errorf("try 2's log does not show the re-attach and the pod's output:\n%s", log)
	}
	pods, err := b.client.CoreV1().Pods(b.ns).List(b.Ctx, metav1.ListOptions{LabelSelector: "dag_id=restart"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		var names []string
		for _, p := range pods.Items {
			names = append(names, p.Name+"(try "+p.Labels["try_number"]+")")
		}
		t.Errorf("%d pods for the task (%v), want exactly 1", len(pods.Items), names)
	}
}
