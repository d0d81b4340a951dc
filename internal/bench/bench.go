// Package bench measures the scheduler on fixed workloads, printing figures
// a person can compare across commits (`podflow bench`).
package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

// Options choose the workloads' sizes.
type Options struct {
	ChainLength    int // (a) chain of bash `true` tasks
	Independent    int // (b) independent bash `true` tasks
	ThroughputRuns int // (c) runs of ThroughputTasks empty tasks
	ThroughputTask int
	Workers        int
	Repeat         int // repetitions of (a) and (b); the median is reported
}

// Defaults are the workloads.
func Defaults() Options {
	return Options{ChainLength: 50, Independent: 50, ThroughputRuns: 200, ThroughputTask: 100, Workers: 256, Repeat: 5}
}

// Result holds the figures.
type Result struct {
	Chain          time.Duration
	Independent    time.Duration
	Throughput     float64 // task instances per second
	ThroughputWall time.Duration
	// ThroughputCreate is the part of ThroughputWall that created the runs
	// and their task instances (River's `bench -n` inserts before timing).
	ThroughputCreate time.Duration
	LatencyP50       time.Duration
	LatencyP99       time.Duration
	LatencySamples   int
	ChainRuns        []time.Duration
	IndependentRuns  []time.Duration
}

// Run runs every workload against st (an empty, migrated database).
func Run(ctx context.Context, st *store.Store, opts Options, out io.Writer) (*Result, error) {
	dir, err := os.MkdirTemp("", "podflow-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		"bench_chain":       chainDAG(opts.ChainLength),
		"bench_independent": independentDAG(opts.Independent),
		"bench_throughput":  throughputDAG(opts.ThroughputTask, opts.ThroughputRuns),
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(src), 0o644); err != nil {
			return nil, err
		}
	}
	ops := operators.NewRegistry(bash.New(), empty.New())
	folder := dag.NewParser(ops.Schemas()).LoadFolder(dir)
	if errs := folder.AllErrors(); len(errs) > 0 {
		return nil, errs
	}
	s := scheduler.New(st, ops, scheduler.Config{
		DagsFolder: dir, Workers: opts.Workers,
		Limits: store.Limits{Pools: map[string]int{"default_pool": 100000}, DefaultSlot: 100000},
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(os.Getenv("BENCH_LOG")), Output: os.Stderr}),
	})
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	defer func() { stop(); <-done }()

	res := &Result{}
	for i := 0; i < opts.Repeat; i++ {
		d, err := timeRun(ctx, st, folder.DAG("bench_chain"))
		if err != nil {
			return nil, err
		}
		res.ChainRuns = append(res.ChainRuns, d)
		fmt.Fprintf(out, "(a) chain of %d bash tasks, try %d: %s\n", opts.ChainLength, i+1, d.Round(time.Millisecond))
	}
	res.Chain = median(res.ChainRuns)
	lat, err := latencies(ctx, st, "bench_chain")
	if err != nil {
		return nil, err
	}
	res.LatencySamples = len(lat)
	res.LatencyP50, res.LatencyP99 = percentile(lat, 50), percentile(lat, 99)

	for i := 0; i < opts.Repeat; i++ {
		d, err := timeRun(ctx, st, folder.DAG("bench_independent"))
		if err != nil {
			return nil, err
		}
		res.IndependentRuns = append(res.IndependentRuns, d)
		fmt.Fprintf(out, "(b) %d independent bash tasks, try %d: %s\n", opts.Independent, i+1, d.Round(time.Millisecond))
	}
	res.Independent = median(res.IndependentRuns)

	wall, create, err := timeRuns(ctx, st, folder.DAG("bench_throughput"), opts.ThroughputRuns)
	if err != nil {
		return nil, err
	}
	res.ThroughputWall = wall
	res.ThroughputCreate = create
	res.Throughput = float64(opts.ThroughputRuns*opts.ThroughputTask) / wall.Seconds()

	fmt.Fprintf(out, "\npodflow bench (workers=%d)\n", opts.Workers)
	fmt.Fprintf(out, "(a) chain of %d bash `true` tasks, trigger → run success: median %s\n", opts.ChainLength, res.Chain.Round(time.Millisecond))
	fmt.Fprintf(out, "(b) %d independent bash `true` tasks, trigger → run success: median %s\n", opts.Independent, res.Independent.Round(time.Millisecond))
	fmt.Fprintf(out, "(c) %d runs × %d empty tasks: %s, %.0f task instances/s\n", opts.ThroughputRuns, opts.ThroughputTask, wall.Round(time.Millisecond), res.Throughput)
	if work := wall - create; work > 0 {
		fmt.Fprintf(out, "    of which creating the runs %s; after it: %.0f task instances/s\n", create.Round(time.Millisecond),
			float64(opts.ThroughputRuns*opts.ThroughputTask)/work.Seconds())
	}
	fmt.Fprintf(out, "(d) task-to-task latency (upstream end → downstream start), %d samples: p50 %s, p99 %s\n",
		res.LatencySamples, res.LatencyP50.Round(10*time.Microsecond), res.LatencyP99.Round(10*time.Microsecond))
	return res, nil
}

func chainDAG(n int) string {
	var sb strings.Builder
	sb.WriteString("dag_id: bench_chain\nmax_active_runs: 1\ntasks:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  - {task_id: t%d, operator: bash, bash_command: 'true', do_xcom_push: false", i)
		if i > 0 {
			fmt.Fprintf(&sb, ", upstream: [t%d]", i-1)
		}
		sb.WriteString("}\n")
	}
	return sb.String()
}

func independentDAG(n int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "dag_id: bench_independent\nmax_active_runs: 1\nmax_active_tasks: %d\ntasks:\n", n)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  - {task_id: t%d, operator: bash, bash_command: 'true', do_xcom_push: false}\n", i)
	}
	return sb.String()
}

func throughputDAG(tasks, runs int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "dag_id: bench_throughput\nmax_active_runs: %d\nmax_active_tasks: 100000\ntasks:\n", runs)
	for i := 0; i < tasks; i++ {
		fmt.Fprintf(&sb, "  - {task_id: t%d, operator: empty}\n", i)
	}
	return sb.String()
}

func register(ctx context.Context, st *store.Store, d *dag.DAG) error {
	return st.InTx(ctx, func(q store.Q) error { return scheduler.RegisterDAG(ctx, q, d) })
}

// timeRun triggers one run and returns trigger → success.
func timeRun(ctx context.Context, st *store.Store, d *dag.DAG) (time.Duration, error) {
	d2, _, err := timeRuns(ctx, st, d, 1)
	return d2, err
}

// timeRuns triggers n runs and returns the time until all succeeded, and
// how long creating the runs took of it (their transaction's commit; no
// task can start before).
func timeRuns(ctx context.Context, st *store.Store, d *dag.DAG, n int) (total, create time.Duration, err error) {
	if err := register(ctx, st, d); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	runIDs := make([]string, n)
	err = st.InTx(ctx, func(q store.Q) error {
		for i := range runIDs {
			id, _, err := scheduler.CreateRun(ctx, q, d, "manual", time.Now().UTC().Add(time.Duration(i)*time.Microsecond), nil)
			if err != nil {
				return err
			}
			runIDs[i] = id
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	create = time.Since(start)
	// One query for all runs (not one per run), every millisecond for one
	// run, every 50 ms for many (the query reads every run: 0.5 ms for
	// 200): the figure is the runs' end by the
	// database's clock, so polling slower only keeps the harness's own load
	// on the database out of it.
	var last time.Time // the last run's end, by the database's clock
	for {
		var unfinished, failed int
		var end *time.Time
		err := st.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state NOT IN ($3, $4)),
				count(*) FILTER (WHERE state = $4), max(ended_at)
			FROM dag_runs WHERE dag_id = $1 AND run_id = ANY($2)`, d.ID, runIDs, runstate.RunSuccess, runstate.RunFailed).Scan(&unfinished, &failed, &end)
		if err != nil {
			return 0, 0, err
		}
		if failed > 0 {
			return 0, 0, fmt.Errorf("%d bench runs of %s failed", failed, d.ID)
		}
		if unfinished == 0 {
			if end != nil {
				last = *end
			}
			break
		}
		if time.Since(start) > 10*time.Minute {
			return 0, 0, fmt.Errorf("%d bench runs of %s did not finish in 10 minutes", unfinished, d.ID)
		}
		time.Sleep(pollEvery(n))
	}
	if last.IsZero() || last.Before(start) {
		return time.Since(start), create, nil
	}
	return last.Sub(start), create, nil
}

// latencies are upstream ended_at → downstream started_at of every edge
// t<i> → t<i+1> of a DAG's chain runs, from the database timestamps.
func latencies(ctx context.Context, st *store.Store, dagID string) ([]time.Duration, error) {
	runs, err := st.Runs(ctx, dagID, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	var out []time.Duration
	for _, r := range runs {
		tis, err := st.TaskInstances(ctx, r.PK)
		if err != nil {
			return nil, err
		}
		byID := make(map[string]store.TaskInstance, len(tis))
		for _, ti := range tis {
			byID[ti.TaskID] = ti
		}
		for i := 0; ; i++ {
			up, ok1 := byID[fmt.Sprintf("t%d", i)]
			down, ok2 := byID[fmt.Sprintf("t%d", i+1)]
			if !ok1 || !ok2 {
				break
			}
			if up.EndedAt != nil && down.StartedAt != nil {
				out = append(out, down.StartedAt.Sub(*up.EndedAt))
			}
		}
	}
	return out, nil
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}

func pollEvery(runs int) time.Duration {
	if runs == 1 {
		return time.Millisecond
	}
	return 50 * time.Millisecond
}
