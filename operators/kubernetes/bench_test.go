package kubernetes

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/operators"
)

// timedLog notes when podflow's own lines were written.
type timedLog struct {
	mu    sync.Mutex
	times map[string]time.Time
}

func (l *timedLog) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range []string{"created pod"} {
		if strings.HasPrefix(msg, p) {
			l.times[p] = time.Now()
		}
	}
}

func (l *timedLog) Line(string, string) {}

// BenchmarkPodOverhead measures the pod task's own overhead on the cluster,
// one pod per iteration (run with -benchtime 50x for the 50 pods):
// task start → pod created (plan, client, re-attach lookup, create), and
// base container exit seen by the watch → task success (XCom exec and
// sidecar stop, log drain, delete). Reports p50/p99 of both.
func BenchmarkPodOverhead(b *testing.B) {
	kubeconfig := kubetest.Kubeconfig(b)
	ns := kubetest.Namespace(b)
	op := New(WithClients(kube.NewClients()))
	var doneAt time.Time
	op.onDone = func(PodEvent) { doneAt = time.Now() }
	var toCreated, toSuccess []time.Duration
	for i := 0; i < b.N; i++ {
		src := fmt.Sprintf("namespace: %s\nconfig_file: %s\nimage: alpine\ncmds: [sh, -c, 'echo 1 > /airflow/xcom/return.json']\ndo_xcom_push: true\n", ns, kubeconfig)
		task := parseTask(b, fmt.Sprintf("bench-%d", i), src)
		log := &timedLog{times: map[string]time.Time{}}
		tc := &operators.TaskContext{DAG: &dag.DAG{ID: "bench"}, Task: task, RunID: "bench", TryNumber: 1, Log: log}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := op.Execute(ctx, tc)
		cancel()
		end := time.Now()
		if err != nil {
			b.Fatalf("pod %d: %v", i, err)
		}
		toCreated = append(toCreated, log.times["created pod"].Sub(start))
		toSuccess = append(toSuccess, end.Sub(doneAt))
	}
	report := func(name string, d []time.Duration) {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		p50, p99 := d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
		b.ReportMetric(float64(p50.Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, name+"-p99-ms")
	}
	report("start-to-created", toCreated)
	report("exit-to-success", toSuccess)
}
