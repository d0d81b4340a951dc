package kubernetes

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/triggerer"
	"github.com/podflow/podflow/operators"
)

// runBenchTriggerer is a triggerer process (a mode of TestMain) that counts
// its Kubernetes API requests and prints them on SIGUSR1, as
// "requests {method: count} running=N".
func runBenchTriggerer(c *flowtest.Child) error {
	var mu sync.Mutex
	counts := map[string]int{}
	clients := kube.NewClients()
	clients.ObserveRequests(func(method string, code int) {
		mu.Lock()
		counts[method]++
		mu.Unlock()
	})
	capacity, err := strconv.Atoi(c.Env("CAPACITY"))
	if err != nil {
		return fmt.Errorf("CAPACITY: %w", err)
	}
	ops := operators.NewRegistry(New(WithClients(clients)))
	tr := triggerer.New(c.Store, ops.Triggers(), triggerer.Config{Capacity: capacity, Logger: c.Logger})
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			mu.Lock()
			b, _ := json.Marshal(counts)
			mu.Unlock()
			fmt.Printf("requests %s running=%d\n", b, tr.Running())
		}
	}()
	c.Ready(tr.ID())
	return tr.Run(c.Ctx)
}

// BenchmarkDeferredPods: 2,000 deferred pod tasks on one triggerer
// (capacity 5000, or the pod count if larger; PODFLOW_BENCH_PODS=10000 for
// the design target). The pods are bound to a node without a kubelet; the
// benchmark writes their statuses, acting as the kubelet, all at once.
// Reported: API requests the triggerer made, its watch connections, its
// memory per deferred pod, and event → task queued latency.
//
//	go test -run '^$' -bench DeferredPods -benchtime 1x ./operators/kubernetes/
//	PODFLOW_BENCH_PODS=10000 go test -run '^$' -bench DeferredPods -benchtime 1x -timeout 30m ./operators/kubernetes/
func BenchmarkDeferredPods(b *testing.B) {
	n := 2000
	if s := os.Getenv("PODFLOW_BENCH_PODS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	for i := 0; i < b.N; i++ {
		benchDeferredPods(b, n)
	}
}

func benchDeferredPods(b *testing.B, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	url := pgtest.NewDatabase(b)
	st, err := store.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	kubeconfig := kubetest.Kubeconfig(b)
	ns := kubetest.Namespace(b)
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}

	// A node with no kubelet: nothing runs or changes these pods but us.
	node := "bench-" + ns
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	defer cs.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{}) //nolint:errcheck
	names := make([]string, n)
	parallel(n, 32, func(i int) {
		names[i] = fmt.Sprintf("p-%05d", i)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: names[i], Labels: map[string]string{LabelPodOperator: "True", "dag_id": "scale"}},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "base", Image: "alpine", Command: []string{"true"}}}},
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			b.Error(err)
		}
	})
	if b.Failed() {
		return
	}
	tiIDs := deferTasks(b, ctx, st, kubeconfig, ns, names)

	capacity := max(5000, n)
	child := flowtest.StartChild(b, "bench-triggerer", url, "", fmt.Sprintf("CAPACITY=%d", capacity))
	cmd := child.Cmd
	lines := bufio.NewScanner(child.Lines)
	baseRSS := procKB(cmd.Process.Pid, "VmRSS")
	snapshot := func() (map[string]int, int) {
		_ = cmd.Process.Signal(syscall.SIGUSR1)
		if !lines.Scan() {
			b.Fatal("triggerer gone")
		}
		f := strings.Fields(lines.Text())
		var c map[string]int
		_ = json.Unmarshal([]byte(f[1]), &c)
		running, _ := strconv.Atoi(strings.TrimPrefix(f[2], "running="))
		return c, running
	}
	claimStart := time.Now()
	for {
		_, running := snapshot()
		if running == n {
			break
		}
		if time.Since(claimStart) > 5*time.Minute {
			b.Fatalf("triggerer runs %d of %d triggers", running, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	claimed := time.Since(claimStart)
	time.Sleep(2 * time.Second) // steady state: what does waiting cost?
	waiting, _ := snapshot()
	time.Sleep(10 * time.Second)
	waitingAfter, _ := snapshot()

	// Every pod finishes at once: the benchmark acts as the kubelet. The
	// pods are read first (one list), so the burst is only the status
	// writes, one per pod as a kubelet's.
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	pods := map[string]*corev1.Pod{}
	for i := range list.Items {
		pods[list.Items[i].Name] = &list.Items[i]
	}
	finishedAt := make([]time.Time, n)
	writes := make([]time.Duration, n)
	written := make([]time.Time, n) // the status write returned: the API server has it
	start := time.Now()
	parallel(n, 64, func(i int) {
		now := metav1.Now()
		pod := pods[names[i]]
		if pod == nil {
			b.Errorf("pod %s not listed", names[i])
			return
		}
		pod.Status.Phase = corev1.PodSucceeded
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", Image: "alpine", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now}}}}
		// The pod "finishes" now: the event is its status write, whose own
		// time in the API server counts in the latency.
		finishedAt[i] = time.Now()
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			b.Error(err)
		}
		writes[i] = time.Since(finishedAt[i])
		written[i] = finishedAt[i].Add(writes[i])
	})
	statusWall := time.Since(start)
	sort.Slice(writes, func(i, j int) bool { return writes[i] < writes[j] })
	var lat, afterWrite []time.Duration
	deadline := time.Now().Add(5 * time.Minute)
	for {
		// The state history's "queued,try,unix-µs;" entries (migration 0010).
		rows, err := st.Pool.Query(ctx, `SELECT id, to_timestamp(split_part(h, ',', 3)::bigint / 1e6)
			FROM task_instances, unnest(string_to_array(transitions, ';')) h
			WHERE split_part(h, ',', 1) = 'queued' AND id = ANY($1)`, tiIDs)
		if err != nil {
			b.Fatal(err)
		}
		at := map[int64]time.Time{}
		for rows.Next() {
			var id int64
			var t time.Time
			_ = rows.Scan(&id, &t)
			at[id] = t
		}
		rows.Close()
		if len(at) == n {
			lat, afterWrite = lat[:0], afterWrite[:0]
			for i, id := range tiIDs {
				lat = append(lat, at[id].Sub(finishedAt[i]))
				afterWrite = append(afterWrite, at[id].Sub(written[i]))
			}
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d tasks queued", len(at), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	final, _ := snapshot()
	peak := procKB(cmd.Process.Pid, "VmHWM")
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	sort.Slice(afterWrite, func(i, j int) bool { return afterWrite[i] < afterWrite[j] })
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	w50, w99 := afterWrite[n/2], afterWrite[n*99/100]
	perPod := float64(peak-baseRSS) / float64(n)
	waitReqs := 0
	for k, v := range waitingAfter {
		waitReqs += v - waiting[k]
	}
	b.ReportMetric(float64(final["WATCH"]), "watches")
	b.ReportMetric(float64(total(final)), "api-requests")
	b.ReportMetric(perPod, "KB/deferred-pod")
	b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
	b.ReportMetric(float64(w99.Milliseconds()), "p99-after-write-ms")
	fmt.Printf("deferred pods: %d on one triggerer (capacity %d); claimed and watching in %s\n", n, capacity, claimed.Round(time.Millisecond))
	fmt.Printf("  API requests by the triggerer: %v (total %d); while %d pods waited 10 s: %d requests\n", final, total(final), n, waitReqs)
	fmt.Printf("  watch connections: %d (namespaces: 1)\n", final["WATCH"])
	fmt.Printf("  triggerer RSS: %d KB at start, peak %d KB: %.1f KB per deferred pod\n", baseRSS, peak, perPod)
	fmt.Printf("  %d pod statuses written in %s (one write: p50 %s, p99 %s); event → task queued: p50 %s, p99 %s\n", n,
		statusWall.Round(time.Millisecond), writes[n/2].Round(time.Millisecond), writes[n*99/100].Round(time.Millisecond),
		p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	fmt.Printf("  from the status write's return (the API server has it) → task queued: p50 %s, p99 %s\n",
		w50.Round(time.Millisecond), w99.Round(time.Millisecond))
	fmt.Printf("  Airflow's trigger polls each pod every 2 s with a new client: %d pods ≈ %d API requests/s\n", n, n/2)
}

func total(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

// deferTasks stores n deferred task instances, each with a pod trigger.
func deferTasks(b *testing.B, ctx context.Context, st *store.Store, kubeconfig, ns string, names []string) []int64 {
	var ids []int64
	var runPK int64
	err := st.InTx(ctx, func(q store.Q) error {
		if err := q.SaveDagVersion(ctx, "scalehash", "scale", "scale.yaml", []byte("dag_id: scale\n")); err != nil {
			return err
		}
		if err := q.SetDagCurrent(ctx, "scale", "scale.yaml", "scalehash", "", false); err != nil {
			return err
		}
		now := time.Now()
		pk, _, err := q.CreateRun(ctx, store.NewRun{DagID: "scale", RunID: "scale", Hash: "scalehash", RunType: "manual",
			LogicalDate: now, DataIntervalStart: now, DataIntervalEnd: now})
		if err != nil {
			return err
		}
		specs := make([]store.TaskSpec, len(names))
		for i, name := range names {
			specs[i] = store.TaskSpec{TaskID: name, Pool: "default_pool", Priority: 1}
		}
		run := store.Run{PK: pk, DagID: "scale", RunID: "scale"}
		if err := q.InsertTaskInstances(ctx, run, specs); err != nil {
			return err
		}
		tis, err := q.TaskInstances(ctx, pk)
		if err != nil {
			return err
		}
		byName := map[string]int64{}
		for _, ti := range tis {
			byName[ti.TaskID] = ti.ID
		}
		for _, name := range names {
			ids = append(ids, byName[name])
			args, _ := json.Marshal(TriggerArgs{Cluster: ClusterRef{ConfigFile: kubeconfig}, Namespace: ns, Name: name,
				StartupTimeoutSeconds: 3600, ScheduleTimeoutSeconds: 3600})
			if _, err := q.CreateTrigger(ctx, store.NewTrigger{TaskInstanceID: byName[name], Kind: TriggerKind, Args: args, Method: "resume"}); err != nil {
				return err
			}
		}
		runPK = pk
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	// As a worker leaves them after launching their pods and deferring.
	if _, err := st.Pool.Exec(ctx, `UPDATE task_instances SET state = 'deferred', try_number = 1, next_method = 'resume',
		started_at = now() WHERE run_pk = $1`, runPK); err != nil {
		b.Fatal(err)
	}
	return ids
}

func parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// procKB reads a /proc/PID/status field in KB.
func procKB(pid int, field string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}
	return 0
}
