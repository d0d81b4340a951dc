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
	"github.com/podflow/podflow/internal/dagwatch"
	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/triggerer"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/crossdag"
	"github.com/podflow/podflow/operators/empty"
	"github.com/podflow/podflow/operators/timesensor"
)

// ExternalOptions size the external-sensor workload (#16).
type ExternalOptions struct {
	Sensors  int           // deferred external_task_sensor tasks, each on its own target task
	Batches  int           // targets finish in this many batches…
	Interval time.Duration // …this far apart
}

// ExternalDefaults are the workload: 1,000 sensors.
func ExternalDefaults() ExternalOptions {
	return ExternalOptions{Sensors: 1000, Batches: 10, Interval: 500 * time.Millisecond}
}

// ExternalResult holds the figures.
type ExternalResult struct {
	Sensors        int
	ListenConns    int // LISTEN connections of the process while every sensor waited
	Backends       int // all connections of the process to the database then
	Queries        int64
	WakeP50        time.Duration // target task's end → sensor task resumed by the triggerer (deferred → queued)
	WakeP99        time.Duration
	ResumeP50      time.Duration // target task's end → sensor task's success
	ResumeP99      time.Duration
	ResumeMax      time.Duration
	DeferredWithin time.Duration // trigger → every sensor deferred
}

// RunExternalSensors runs N external sensors, each waiting on its own task
// of another DAG, in one process (scheduler + triggerer sharing one
// notifier and one dagwatch hub, as `podflow standalone`), then finishes
// the targets in batches and measures how soon each sensor resumed and
// succeeded, and how many database connections the waiting took.
func RunExternalSensors(ctx context.Context, st *store.Store, opts ExternalOptions, out io.Writer) (*ExternalResult, error) {
	dir, err := os.MkdirTemp("", "podflow-bench-external-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "bench_target.yaml"), []byte(targetDAG(opts.Sensors)), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench_sensors.yaml"), []byte(sensorsDAG(opts.Sensors)), 0o644); err != nil {
		return nil, err
	}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(os.Getenv("BENCH_LOG")), Output: os.Stderr})
	n := notifier.New(st.Pool.Config().ConnConfig, log.Named("notifier"), store.ChannelTaskQueued, store.ChannelSchedulerWake,
		store.ChannelTaskStopped, store.ChannelTriggerCreated, store.ChannelStateChanged)
	hub, err := dagwatch.New(st, n, log.Named("dagwatch"))
	if err != nil {
		return nil, err
	}
	ops := operators.NewRegistry(empty.New(), timesensor.DateTime{}, &crossdag.ExternalTaskSensor{Hub: hub})
	folder := dag.NewParser(ops.Schemas()).LoadFolder(dir)
	if errs := folder.AllErrors(); len(errs) > 0 {
		return nil, errs
	}
	rctx, stop := context.WithCancel(ctx)
	var parts []chan error
	goRun := func(run func(context.Context) error) {
		done := make(chan error, 1)
		parts = append(parts, done)
		go func() { done <- run(rctx) }()
	}
	defer func() {
		stop()
		for _, p := range parts {
			<-p
		}
	}()
	goRun(func(ctx context.Context) error { n.Run(ctx); return nil })
	goRun(hub.Run)
	s := scheduler.New(st, ops, scheduler.Config{DagsFolder: dir, Workers: 256, Notifier: n,
		Limits: store.Limits{Pools: map[string]int{"default_pool": 100000}, DefaultSlot: 100000}, Logger: log})
	goRun(s.Run)
	tr := triggerer.New(st, ops.Triggers(), triggerer.Config{Capacity: opts.Sensors + 10, Notifier: n, Logger: log})
	goRun(tr.Run)

	logical := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	target, err := scheduler.TriggerRun(ctx, st, folder.DAG("bench_target"), logical, nil)
	if err != nil {
		return nil, err
	}
	sensors, err := scheduler.TriggerRun(ctx, st, folder.DAG("bench_sensors"), logical, nil)
	if err != nil {
		return nil, err
	}
	res := &ExternalResult{Sensors: opts.Sensors}
	if err := waitUntil(ctx, 5*time.Minute, func() (bool, error) {
		c, err := countStates(ctx, st, "bench_sensors", sensors)
		return c[runstate.Deferred] == opts.Sensors, err
	}); err != nil {
		return nil, fmt.Errorf("sensors deferred: %w", err)
	}
	res.DeferredWithin = time.Since(start)
	time.Sleep(time.Second) // let the first checks of the hub settle before counting
	if res.ListenConns, res.Backends, err = connections(ctx, st); err != nil {
		return nil, err
	}
	queriesBefore := hub.Queries()

	targetTIs, err := st.TaskInstances(ctx, mustRun(ctx, st, "bench_target", target).PK)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, ti := range targetTIs {
		if strings.HasPrefix(ti.TaskID, "t") {
			ids = append(ids, ti.ID)
		}
	}
	per := (len(ids) + opts.Batches - 1) / opts.Batches
	for len(ids) > 0 {
		batch := ids[:min(per, len(ids))]
		ids = ids[len(batch):]
		if err := st.InTx(ctx, func(q store.Q) error {
			for _, id := range batch {
				if _, err := q.MarkTaskInstance(ctx, id, runstate.Success); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
		time.Sleep(opts.Interval)
	}
	if err := waitUntil(ctx, 5*time.Minute, func() (bool, error) {
		c, err := countStates(ctx, st, "bench_sensors", sensors)
		return c[runstate.Success] == opts.Sensors, err
	}); err != nil {
		return nil, fmt.Errorf("sensors succeeded: %w", err)
	}
	res.Queries = hub.Queries() - queriesBefore

	targetEnd := map[string]time.Time{}
	if targetTIs, err = st.TaskInstances(ctx, mustRun(ctx, st, "bench_target", target).PK); err != nil {
		return nil, err
	}
	for _, ti := range targetTIs {
		if ti.EndedAt != nil {
			targetEnd[strings.TrimPrefix(ti.TaskID, "t")] = *ti.EndedAt
		}
	}
	sensorTIs, err := st.TaskInstances(ctx, mustRun(ctx, st, "bench_sensors", sensors).PK)
	if err != nil {
		return nil, err
	}
	var lags, wakes []time.Duration
	for _, ti := range sensorTIs {
		end, ok := targetEnd[strings.TrimPrefix(ti.TaskID, "s")]
		if !ok || ti.EndedAt == nil {
			continue
		}
		lags = append(lags, ti.EndedAt.Sub(end))
		if at, ok, err := resumedAt(ctx, st, ti.ID); err != nil {
			return nil, err
		} else if ok {
			wakes = append(wakes, at.Sub(end))
		}
	}
	res.WakeP50, res.WakeP99 = percentile(wakes, 50), percentile(wakes, 99)
	res.ResumeP50, res.ResumeP99, res.ResumeMax = percentile(lags, 50), percentile(lags, 99), percentile(lags, 100)

	fmt.Fprintf(out, "\npodflow bench --external-sensors %d (one process: scheduler + triggerer, one notifier, one dagwatch hub)\n", opts.Sensors)
	fmt.Fprintf(out, "sensors deferred: all %d within %s of the trigger\n", opts.Sensors, res.DeferredWithin.Round(time.Millisecond))
	fmt.Fprintf(out, "connections while all waited: %d LISTEN connection(s); %d connections of the process in all (pool + LISTEN)\n", res.ListenConns, res.Backends)
	fmt.Fprintf(out, "targets finished in %d batches %s apart; %d batched state queries answered every wait\n", opts.Batches, opts.Interval, res.Queries)
	fmt.Fprintf(out, "target task end → sensor resumed by the triggerer (deferred → queued), %d samples: p50 %s, p99 %s\n", len(wakes),
		res.WakeP50.Round(time.Millisecond), res.WakeP99.Round(time.Millisecond))
	fmt.Fprintf(out, "target task end → sensor task success, %d samples: p50 %s, p99 %s, max %s\n", len(lags),
		res.ResumeP50.Round(time.Millisecond), res.ResumeP99.Round(time.Millisecond), res.ResumeMax.Round(time.Millisecond))
	return res, nil
}

func targetDAG(n int) string {
	var sb strings.Builder
	// The targets wait behind a gate that never opens by itself: the bench
	// finishes them by hand, at times it chooses.
	sb.WriteString("dag_id: bench_target\nmax_active_tasks: 100000\ntasks:\n")
	sb.WriteString("  - {task_id: gate, operator: date_time_sensor_async, target_time: '2099-01-01'}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  - {task_id: t%d, operator: empty, upstream: [gate]}\n", i)
	}
	return sb.String()
}

func sensorsDAG(n int) string {
	var sb strings.Builder
	sb.WriteString("dag_id: bench_sensors\nmax_active_tasks: 100000\ntasks:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "  - {task_id: s%d, operator: external_task_sensor, external_dag_id: bench_target, external_task_id: t%d, timeout: 1h}\n", i, i)
	}
	return sb.String()
}

// resumedAt is when a task instance left deferred (the trigger's event).
func resumedAt(ctx context.Context, st *store.Store, tiID int64) (time.Time, bool, error) {
	h, err := st.StateHistory(ctx, tiID)
	if err != nil {
		return time.Time{}, false, err
	}
	for i := 1; i < len(h); i++ {
		if h[i-1].State == runstate.Deferred {
			return h[i].At, true, nil
		}
	}
	return time.Time{}, false, nil
}

func mustRun(ctx context.Context, st *store.Store, dagID, runID string) store.Run {
	r, _ := st.Run(ctx, dagID, runID)
	return r
}

func countStates(ctx context.Context, st *store.Store, dagID, runID string) (map[string]int, error) {
	run, err := st.Run(ctx, dagID, runID)
	if err != nil {
		return nil, err
	}
	states, err := st.TaskStates(ctx, run.PK)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range states {
		out[s]++
	}
	return out, nil
}

// connections counts this database's LISTEN connections and all its
// connections but the one asking.
func connections(ctx context.Context, st *store.Store) (listen, all int, err error) {
	err = st.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE query ILIKE 'LISTEN%'), count(*)
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&listen, &all)
	return listen, all, err
}

func waitUntil(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
