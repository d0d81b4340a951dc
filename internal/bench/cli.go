package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

// CLIResult holds the one-step trigger → done figures through the CLI path:
// `podflow trigger bench_cli --wait` run from a shell, as a user would.
type CLIResult struct {
	Samples  []time.Duration
	P50, P90 time.Duration
	CPU      time.Duration // p50 of the CLI process's user + system time
	InDB     time.Duration // p50 of run created → ended, by the database's clock
}

const cliDAG = "dag_id: bench_cli\ntasks:\n  - {task_id: t0, operator: bash, bash_command: 'true', do_xcom_push: false}\n"

// RunCLI measures, on st (an empty, migrated database reachable at url), n
// executions of `exe trigger bench_cli --wait` (exe: the built podflow
// binary) against a scheduler running in this process: process start to
// exit, run ended included.
func RunCLI(ctx context.Context, st *store.Store, url, exe string, n, workers int, out io.Writer) (*CLIResult, error) {
	dir, err := os.MkdirTemp("", "podflow-bench-cli-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "bench_cli.yaml"), []byte(cliDAG), 0o644); err != nil {
		return nil, err
	}
	ops := operators.NewRegistry(bash.New(), empty.New())
	folder := dag.NewParser(ops.Schemas()).LoadFolder(dir)
	if errs := folder.AllErrors(); len(errs) > 0 {
		return nil, errs
	}
	if err := register(ctx, st, folder.DAG("bench_cli")); err != nil {
		return nil, err
	}
	stop, err := startScheduler(ctx, st, ops, dir, workers)
	if err != nil {
		return nil, err
	}
	defer stop()

	env := append(os.Environ(), "DATABASE_URL="+url, "PODFLOW_DATABASE_URL="+url, "PODFLOW_DAGS_FOLDER="+dir)
	res := &CLIResult{}
	var cpu []time.Duration
	for i := 0; i < n; i++ {
		cmd := exec.CommandContext(ctx, exe, "trigger", "bench_cli", "--wait")
		cmd.Env, cmd.Dir = env, dir
		start := time.Now()
		output, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("%s trigger bench_cli --wait: %w\n%s", exe, err, output)
		}
		res.Samples = append(res.Samples, d)
		cpu = append(cpu, cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime())
	}
	res.P50, res.P90, res.CPU = percentile(res.Samples, 50), percentile(res.Samples, 90), percentile(cpu, 50)
	rows, err := st.Pool.Query(ctx, `SELECT ended_at - created_at FROM dag_runs WHERE dag_id = 'bench_cli' AND ended_at IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("bench run times: %w", err)
	}
	inDB, err := pgx.CollectRows(rows, pgx.RowTo[time.Duration])
	if err != nil {
		return nil, fmt.Errorf("bench run times: %w", err)
	}
	res.InDB = percentile(inDB, 50)
	fmt.Fprintf(out, "(e) one-task DAG, `podflow trigger --wait` from the shell (process start → exit), %d runs: p50 %s, p90 %s; "+
		"CLI process CPU (user+sys) p50 %s; run created → ended in the database p50 %s\n",
		n, res.P50.Round(100*time.Microsecond), res.P90.Round(100*time.Microsecond), res.CPU.Round(time.Millisecond), res.InDB.Round(100*time.Microsecond))
	return res, nil
}

// startScheduler runs a scheduler over dir in this process until the
// returned stop is called.
func startScheduler(ctx context.Context, st *store.Store, ops *operators.Registry, dir string, workers int) (stop func(), err error) {
	s := scheduler.New(st, ops, scheduler.Config{
		DagsFolder: dir, Workers: workers,
		Limits: store.Limits{Pools: map[string]int{"default_pool": 100000}, DefaultSlot: 100000},
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(os.Getenv("BENCH_LOG")), Output: os.Stderr}),
	})
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	return func() { cancel(); <-done }, nil
}
