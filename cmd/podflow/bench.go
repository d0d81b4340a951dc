package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/bench"
	"github.com/podflow/podflow/internal/daemon"
	"github.com/podflow/podflow/internal/localpg"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newBenchCmd(app))
	})
}

func newBenchCmd(app *App) *cobra.Command {
	opts := bench.Defaults()
	mopts := bench.MappingDefaults()
	sopts := bench.StormDefaults()
	var useDB, mapping bool
	var manyDAGs, cliRuns, logLines int
	var cliBinary, cpuProfile, memProfile string
	eopts := bench.ExternalDefaults()
	var externalSensors int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the scheduler on fixed workloads (on a fresh local PostgreSQL with default settings)",
		Long: "Measure the scheduler: (a) a chain of bash `true` tasks, (b) independent bash `true` tasks, " +
			"(c) throughput of empty tasks, (d) task-to-task latency. It starts a throwaway PostgreSQL with " +
			"default settings (fsync on) unless --use-database-url is given, which runs on DATABASE_URL's database (it must be empty).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			url := ""
			if useDB {
				var err error
				if url, err = app.DatabaseURL(ctx); err != nil {
					return err
				}
			} else {
				dir, err := os.MkdirTemp("", "podflow-bench-pg-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				if err := os.Chmod(dir, 0o755); err != nil { // the server may run as the postgres user
					return err
				}
				pg, err := localpg.StartPostgres(ctx, localpg.PostgresOptions{Dir: dir, Fsync: true})
				if err != nil {
					return err
				}
				defer pg.Stop(ctx)
				if url, err = pg.CreateDatabase(ctx, "bench"); err != nil {
					return err
				}
			}
			st, err := daemon.OpenStore(ctx, url)
			if err != nil {
				return err
			}
			defer st.Close()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("--cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			if memProfile != "" {
				runtime.MemProfileRate = 16 << 10 // finer than the default 512 KiB: small retained objects show
				if manyDAGs > 0 {
					sopts.HeapProfile = memProfile // FILE.idle and FILE.after-edits, while the schedulers run
				} else {
					defer func() {
						if err := bench.WriteHeapProfile(memProfile); err != nil {
							fmt.Fprintf(cmd.ErrOrStderr(), "--memprofile: %v\n", err)
						}
					}()
				}
			}
			start := time.Now()
			if externalSensors > 0 {
				eopts.Sensors = externalSensors
				if _, err := bench.RunExternalSensors(ctx, st, eopts, cmd.OutOrStdout()); err != nil {
					return err
				}
			} else if logLines > 0 {
				if _, err := bench.RunLogs(ctx, st, logLines, opts.Workers, cmd.OutOrStdout()); err != nil {
					return err
				}
			} else if cliRuns > 0 {
				exe := cliBinary
				if exe == "" {
					var err error
					if exe, err = os.Executable(); err != nil {
						return err
					}
				}
				if _, err := bench.RunCLI(ctx, st, st.Pool.Config().ConnString(), exe, cliRuns, opts.Workers, cmd.OutOrStdout()); err != nil {
					return err
				}
			} else if manyDAGs > 0 {
				sopts.DAGs = manyDAGs
				if _, err := bench.RunStorm(ctx, st, sopts, cmd.OutOrStdout()); err != nil {
					return err
				}
			} else if mapping {
				mopts.Workers = opts.Workers
				if _, err := bench.RunMapping(ctx, st, mopts, cmd.OutOrStdout()); err != nil {
					return err
				}
			} else if _, err := bench.Run(ctx, st, opts, cmd.OutOrStdout()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "bench took %s\n", time.Since(start).Round(time.Second))
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&mapping, "mapping", false, "run the mapping workload instead (#14): expansion time, mapped vs static throughput")
	f.IntVar(&mopts.Instances, "mapped-instances", mopts.Instances, "with --mapping: instances per mapped task (and static tasks per run)")
	f.IntVar(&mopts.Runs, "mapped-runs", mopts.Runs, "with --mapping: runs of each DAG")
	f.IntVar(&manyDAGs, "many-dags", 0, "run the many-DAGs workload instead (#21): this many DAGs of 10 tasks due at the same 5-minute boundary (it waits for the next one); run start lag from the boundary")
	f.IntVar(&sopts.Schedulers, "schedulers", sopts.Schedulers, "with --many-dags: schedulers sharing the database")
	f.IntVar(&sopts.Workers, "storm-workers", sopts.Workers, "with --many-dags: worker slots of each scheduler")
	f.IntVar(&sopts.Edits, "storm-edits", sopts.Edits, "with --many-dags: edits of one DAG file after the storm, then memory again (0: none)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the bench process to this file (read it with `go tool pprof`)")
	f.StringVar(&memProfile, "memprofile", "", "write a heap profile of the bench process to this file at the end (with --many-dags: FILE.idle after the storm and FILE.after-edits)")
	f.IntVar(&externalSensors, "external-sensors", 0, "run the cross-DAG workload instead (#16): this many deferred external_task_sensor tasks on one triggerer; connections used and resume latency")
	f.IntVar(&cliRuns, "cli", 0, "run the CLI workload instead (#18): this many `podflow trigger X --wait` of a one-task DAG, exec'd from this binary; p50 and p90")
	f.StringVar(&cliBinary, "cli-binary", "", "with --cli: the podflow binary to run (default this one), e.g. an older build to compare")
	f.IntVar(&logLines, "log-lines", 0, "run the log-heavy workload instead (#18): one task printing this many lines (e.g. 1000000); time, lines/s, rows, bytes, last page read")
	f.BoolVar(&useDB, "use-database-url", false, "run on DATABASE_URL's (empty) database instead of a throwaway local one")
	f.IntVar(&opts.ChainLength, "chain", opts.ChainLength, "tasks in the chain workload")
	f.IntVar(&opts.Independent, "independent", opts.Independent, "tasks in the independent workload")
	f.IntVar(&opts.ThroughputRuns, "runs", opts.ThroughputRuns, "runs in the throughput workload")
	f.IntVar(&opts.ThroughputTask, "tasks", opts.ThroughputTask, "empty tasks per run in the throughput workload")
	f.IntVar(&opts.Workers, "workers", opts.Workers, "worker slots of the scheduler")
	f.IntVar(&opts.Repeat, "repeat", opts.Repeat, "repetitions of workloads (a) and (b); the median is reported")
	return cmd
}
