package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/empty"
)

// MappingOptions size the mapping workload: runs of one task mapped over
// Instances empty instances, against runs of Instances static empty tasks.
type MappingOptions struct {
	Instances int
	Runs      int
	Workers   int
	Repeat    int // expansions timed; the median is reported
}

// MappingDefaults are the workload (#14).
func MappingDefaults() MappingOptions {
	return MappingOptions{Instances: 1000, Runs: 5, Workers: 256, Repeat: 5}
}

// MappingResult holds the mapping workload's figures.
type MappingResult struct {
	Static, Mapped         float64 // task instances per second
	StaticWall, MappedWall time.Duration
	Expansion              time.Duration // median: render the list + write every instance
	Expansions             []time.Duration
}

// RunMapping measures, on st (an empty, migrated database): the time to
// expand a task into opts.Instances instances (scheduler.Expand and
// store.ExpandTask in one transaction, as the scheduler does), then the
// throughput of mapped instances against that of as many static tasks.
func RunMapping(ctx context.Context, st *store.Store, opts MappingOptions, out io.Writer) (*MappingResult, error) {
	dir, err := os.MkdirTemp("", "podflow-bench-mapping-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		"bench_static": staticDAG(opts.Instances, opts.Runs),
		"bench_mapped": mappedDAG("bench_mapped", opts.Instances, opts.Runs),
		"bench_expand": mappedDAG("bench_expand", opts.Instances, 1),
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(src), 0o644); err != nil {
			return nil, err
		}
	}
	ops := operators.NewRegistry(empty.New())
	folder := dag.NewParser(ops.Schemas()).LoadFolder(dir)
	if errs := folder.AllErrors(); len(errs) > 0 {
		return nil, errs
	}
	res := &MappingResult{}
	// Expansion first, with no scheduler running: the run is made by hand
	// and never started by anyone else.
	for i := 0; i < opts.Repeat; i++ {
		d, err := timeExpansion(ctx, st, folder.DAG("bench_expand"), i)
		if err != nil {
			return nil, err
		}
		res.Expansions = append(res.Expansions, d)
	}
	res.Expansion = median(res.Expansions)

	s := scheduler.New(st, ops, scheduler.Config{
		DagsFolder: dir, Workers: opts.Workers,
		Limits: store.Limits{Pools: map[string]int{"default_pool": 100000}, DefaultSlot: 100000},
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(os.Getenv("BENCH_LOG")), Output: os.Stderr}),
	})
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	defer func() { stop(); <-done }()

	if res.StaticWall, _, err = timeRuns(ctx, st, folder.DAG("bench_static"), opts.Runs); err != nil {
		return nil, err
	}
	if res.MappedWall, _, err = timeRuns(ctx, st, folder.DAG("bench_mapped"), opts.Runs); err != nil {
		return nil, err
	}
	total := float64(opts.Runs * opts.Instances)
	res.Static, res.Mapped = total/res.StaticWall.Seconds(), total/res.MappedWall.Seconds()

	fmt.Fprintf(out, "\npodflow bench --mapping (workers=%d)\n", opts.Workers)
	fmt.Fprintf(out, "(m1) expand one task into %d instances (render + insert, one transaction): median %s of %d\n",
		opts.Instances, res.Expansion.Round(10*time.Microsecond), opts.Repeat)
	fmt.Fprintf(out, "(m2) %d runs × %d static empty tasks: %s, %.0f task instances/s\n", opts.Runs, opts.Instances,
		res.StaticWall.Round(time.Millisecond), res.Static)
	fmt.Fprintf(out, "(m3) %d runs × 1 task mapped over %d empty instances: %s, %.0f task instances/s (%.0f%% of static)\n",
		opts.Runs, opts.Instances, res.MappedWall.Round(time.Millisecond), res.Mapped, 100*res.Mapped/res.Static)
	return res, nil
}

// timeExpansion creates run i of d by hand, times the expansion of its
// mapped task, and finishes the run so no scheduler picks it up.
func timeExpansion(ctx context.Context, st *store.Store, d *dag.DAG, i int) (time.Duration, error) {
	var elapsed time.Duration
	err := st.InTx(ctx, func(q store.Q) error {
		if err := scheduler.RegisterDAG(ctx, q, d); err != nil {
			return err
		}
		logical := time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		nr := store.NewRun{DagID: d.ID, RunID: fmt.Sprintf("expand_%d", i), Hash: d.Hash, RunType: "manual",
			LogicalDate: logical, DataIntervalStart: logical, DataIntervalEnd: logical, MaxActiveTasks: d.MaxActiveTasks}
		if _, _, err := q.CreateRun(ctx, nr); err != nil {
			return err
		}
		run, err := q.Run(ctx, d.ID, nr.RunID)
		if err != nil {
			return err
		}
		if _, err := q.StartRun(ctx, run.PK); err != nil {
			return err
		}
		t := d.Tasks[0]
		if err := q.InsertTaskInstances(ctx, run, []store.TaskSpec{{TaskID: t.ID, Pool: t.Pool, Priority: 1}}); err != nil {
			return err
		}
		start := time.Now()
		insts, err := scheduler.Expand(ctx, q, run, d, t, 0)
		if err != nil {
			return err
		}
		ok, err := q.ExpandTask(ctx, run.PK, t.ID, insts)
		if err != nil || !ok {
			return fmt.Errorf("expand: applied %v: %w", ok, err)
		}
		elapsed = time.Since(start)
		_, err = q.FinishRun(ctx, run.PK, "success") // no scheduler runs it
		return err
	})
	return elapsed, err
}

func staticDAG(tasks, runs int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "dag_id: bench_static\nmax_active_runs: %d\nmax_active_tasks: 100000\ntasks:\n", runs)
	for i := 0; i < tasks; i++ {
		fmt.Fprintf(&sb, "  - {task_id: t%d, operator: empty}\n", i)
	}
	return sb.String()
}

// mappedDAG maps an empty task over n objects with no options
// (expand_kwargs), the mapped twin of staticDAG.
func mappedDAG(id string, n, runs int) string {
	return fmt.Sprintf("dag_id: %s\nmax_active_runs: %d\nmax_active_tasks: 100000\ntasks:\n  - task_id: each\n    operator: empty\n    expand_kwargs: [%s]\n",
		id, runs, strings.TrimSuffix(strings.Repeat("{}, ", n), ", "))
}
