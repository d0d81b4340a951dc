package triggerer_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators/builtin"
)

// schedulerChildEnv makes the test binary a scheduler process (to kill -9 it).
const schedulerChildEnv = "PODFLOW_TEST_SCHEDULER_PROCESS"

func runChildScheduler() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	s := scheduler.New(st, builtin.Registry(builtin.Deps{Clients: kube.NewClients()}), scheduler.Config{
		DagsFolder: os.Getenv("DAGS_FOLDER"), Workers: 4, ZombieThreshold: 2 * time.Second,
		LoopInterval: 100 * time.Millisecond, SyncInterval: 100 * time.Millisecond,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})})
	fmt.Println("ready")
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// Given a pod task running on a scheduler, when that scheduler is killed -9
// and another one takes the task over (zombie → retry), then the retry
// re-attaches to the running pod: exactly one pod ever existed for the task.
func TestKilledWorkerReattachesToItsPod(t *testing.T) {
	b := setup(t).withCluster()
	d := b.writeDAG("restart", "dag_id: restart\ndefault_args: {retries: 2, retry_delay: 0}\ntasks:\n"+
		b.podTask("long", "sleep 8; echo finished", "    get_logs: true\n"))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), schedulerChildEnv+"=1", "DATABASE_URL="+b.url, "DAGS_FOLDER="+b.dir)
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.HasPrefix(line, "ready") {
		t.Fatalf("scheduler process: %q %v", line, err)
	}
	runID := b.trigger(d)
	deadline := time.Now().Add(time.Minute)
	for { // the pod runs
		pods, err := b.client.CoreV1().Pods(b.ns).List(b.ctx, metav1.ListOptions{LabelSelector: "dag_id=restart"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 1 && pods.Items[0].Status.Phase == "Running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	s := scheduler.New(b.store, b.ops, scheduler.Config{DagsFolder: b.dir, Workers: 4,
		ZombieThreshold: 2 * time.Second, LoopInterval: 100 * time.Millisecond, Logger: logger()})
	b.run(s.Run)
	run, tis := b.waitRunTasks("restart", runID, 2*time.Minute)
	if run.State != runstate.RunSuccess {
		t.Fatalf("run %s: %s", run.State, tis[0].Error)
	}
	ti := tis[0]
	if ti.TryNumber != 2 {
		t.Errorf("try %d, want 2 (the zombie's try, then the re-attaching one)", ti.TryNumber)
	}
	log := b.log(ti)
	if !strings.Contains(log, "re-attaching to pod") || !strings.Contains(log, "finished") {
		t.Errorf("try 2's log does not show the re-attach and the pod's output:\n%s", log)
	}
	pods, err := b.client.CoreV1().Pods(b.ns).List(b.ctx, metav1.ListOptions{LabelSelector: "dag_id=restart"})
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
