package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

// StormOptions size the "many DAGs due at once" workload (#21).
type StormOptions struct {
	DAGs       int // DAGs of 10 tasks (3 bash, 7 empty), all `*/5 * * * *` (the workload)
	Schedulers int // schedulers sharing the database
	Workers    int // worker slots of each
	// Edits: after the storm, edit one DAG file this many times (each
	// waited for until the scheduler saved it) and measure memory again.
	Edits int
	// HeapProfile: when set, heap profiles are written to HeapProfile.idle
	// after the storm and HeapProfile.after-edits after the edits.
	HeapProfile string
}

// StormDefaults are the workload.
func StormDefaults() StormOptions {
	return StormOptions{DAGs: 3000, Schedulers: 1, Workers: 32, Edits: 100}
}

// StormResult holds the storm's figures, measured from the boundary
// at which every DAG became due, by the database's timestamps.
type StormResult struct {
	Boundary              time.Time
	Created               int
	CreatedP50, CreateMax time.Duration
	StartP50, StartP99    time.Duration
	AllDone               time.Duration
	DuplicateRuns         int // runs with the same logical date of one DAG (must be 0)
	// During the storm (from 200 ms after the boundary): how long until an
	// edited DAG file was saved, and until a running task whose owner is
	// gone was failed as a zombie. Their usual cadences: the sync and loop
	// intervals (2 s, 1 s).
	EditPickedUp, ZombieFailed time.Duration
	// The process's memory (the schedulers are in it) when idle after the
	// storm, and after opts.Edits edits of one file; RSS after a GC that
	// returns freed memory to the OS.
	IdleRSS, RSSAfterEdits   uint64
	IdleHeap, HeapAfterEdits uint64
}

// stormPeriod is the storm DAGs' schedule: every 5 minutes, as in #21. (Every
// minute would put 3,000 DAGs' 9,000 bash processes a minute over what two
// cores can start, so the backlog, not the scheduler, would be measured.)
const stormPeriod = 5 * time.Minute

// RunStorm registers opts.DAGs DAGs scheduled every 5 minutes, lets the
// schedulers absorb their first-sync storm, then measures the next
// boundary, when all of them are due at once.
func RunStorm(ctx context.Context, st *store.Store, opts StormOptions, out io.Writer) (*StormResult, error) {
	dir, err := os.MkdirTemp("", "podflow-storm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for i := 0; i < opts.DAGs; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("storm_%05d.yaml", i)), []byte(stormDAG(i)), 0o644); err != nil {
			return nil, err
		}
	}
	ops := operators.NewRegistry(bash.New(), empty.New())
	level := hclog.LevelFromString(os.Getenv("BENCH_LOG"))
	if level == hclog.NoLevel {
		level = hclog.Warn
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, opts.Schedulers)
	for i := 0; i < opts.Schedulers; i++ {
		s := scheduler.New(st, ops, scheduler.Config{
			DagsFolder: dir, Workers: opts.Workers,
			Limits: store.Limits{Pools: map[string]int{"default_pool": 100000}, DefaultSlot: 100000},
			Logger: hclog.New(&hclog.LoggerOptions{Level: level, Output: os.Stderr}),
		})
		go func() { done <- s.Run(sctx) }()
	}
	defer func() {
		stop()
		for i := 0; i < opts.Schedulers; i++ {
			<-done
		}
	}()

	// The first sync creates one run per DAG (a restart storm); wait until
	// they are all done and the next boundary is at least 5 s away.
	fmt.Fprintf(out, "many DAGs: %d DAGs of 10 tasks, %d scheduler(s) × %d workers; absorbing the first sync…\n", opts.DAGs, opts.Schedulers, opts.Workers)
	if err := waitRuns(ctx, st, opts.DAGs, time.Time{}, 10*time.Minute); err != nil {
		return nil, fmt.Errorf("first sync: %w", err)
	}
	// The measured boundary is the next one at least 5 s away with no run
	// left unfinished before it (a boundary passed while absorbing adds its
	// runs: wait for them too).
	var boundary time.Time
	for {
		if err := waitIdle(ctx, st, 10*time.Minute); err != nil {
			return nil, err
		}
		boundary = time.Now().Truncate(stormPeriod).Add(stormPeriod)
		if time.Until(boundary) >= 5*time.Second {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Until(boundary) + 2*time.Second):
		}
	}
	fmt.Fprintf(out, "waiting for the boundary %s…\n", boundary.Format(time.TimeOnly))
	res := &StormResult{Boundary: boundary}
	probes := make(chan error, 1)
	go func() { probes <- stormProbes(ctx, st, dir, boundary.Add(200*time.Millisecond), res) }()
	if err := waitRuns(ctx, st, 0, boundary, time.Until(boundary)+3*time.Minute); err != nil {
		return nil, err
	}
	if err := <-probes; err != nil {
		return nil, fmt.Errorf("probes during the storm: %w", err)
	}
	var created, started []time.Duration
	var last time.Time
	err = func() error {
		rows, err := st.Pool.Query(ctx, `SELECT created_at, started_at, ended_at FROM dag_runs
			WHERE run_type = 'scheduled' AND data_interval_end = $1`, boundary)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c time.Time
			var s, e *time.Time
			if err := rows.Scan(&c, &s, &e); err != nil {
				return err
			}
			created = append(created, c.Sub(boundary))
			if s != nil {
				started = append(started, s.Sub(boundary))
			}
			if e != nil && e.After(last) {
				last = *e
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return st.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT dag_id, logical_date FROM dag_runs
			GROUP BY dag_id, logical_date HAVING count(*) > 1) d`).Scan(&res.DuplicateRuns)
	}()
	if err != nil {
		return nil, err
	}
	res.Created = len(created)
	res.CreatedP50, res.CreateMax = percentile(created, 50), percentile(created, 100)
	res.StartP50, res.StartP99 = percentile(started, 50), percentile(started, 99)
	res.AllDone = last.Sub(boundary)
	fmt.Fprintf(out, "\nmany DAGs due at once (%d DAGs, %d scheduler(s), --workers %d), from the boundary:\n", opts.DAGs, opts.Schedulers, opts.Workers)
	fmt.Fprintf(out, "  runs created: %d, p50 %s, all by %s\n", res.Created, res.CreatedP50.Round(time.Millisecond), res.CreateMax.Round(time.Millisecond))
	fmt.Fprintf(out, "  runs started: p50 %s, p99 %s\n", res.StartP50.Round(time.Millisecond), res.StartP99.Round(time.Millisecond))
	fmt.Fprintf(out, "  all runs done: %s\n", res.AllDone.Round(time.Millisecond))
	fmt.Fprintf(out, "  runs created twice: %d\n", res.DuplicateRuns)
	fmt.Fprintf(out, "  during the storm: an edited DAG file saved after %s (sync every 2 s), a zombie failed after %s (checked every 1 s)\n",
		res.EditPickedUp.Round(time.Millisecond), res.ZombieFailed.Round(time.Millisecond))
	// No further storm while memory is measured: the next boundary would
	// start 3,000 runs in the middle of the edits.
	if _, err := st.Pool.Exec(ctx, `UPDATE dags SET is_paused = true`); err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, cacheSettle); err != nil {
		return nil, err
	}
	res.IdleRSS, res.IdleHeap = memory()
	fmt.Fprintf(out, "  idle after the storm: RSS %.1f MiB, heap %.1f MiB (%d DAGs, %d scheduler(s) in this process; the DAGs now paused)\n",
		mib(res.IdleRSS), mib(res.IdleHeap), opts.DAGs, opts.Schedulers)
	fmt.Fprintf(out, "    %s\n", memoryDetail())
	if opts.HeapProfile != "" {
		if err := WriteHeapProfile(opts.HeapProfile + ".idle"); err != nil {
			return nil, fmt.Errorf("heap profile: %w", err)
		}
	}
	if opts.Edits > 0 {
		if err := editOneFile(ctx, st, dir, opts.Edits); err != nil {
			return nil, err
		}
		if err := sleepCtx(ctx, cacheSettle); err != nil {
			return nil, err
		}
		res.RSSAfterEdits, res.HeapAfterEdits = memory()
		fmt.Fprintf(out, "  after %d edits of one file: RSS %.1f MiB, heap %.1f MiB\n", opts.Edits, mib(res.RSSAfterEdits), mib(res.HeapAfterEdits))
		fmt.Fprintf(out, "    %s\n", memoryDetail())
		if opts.HeapProfile != "" {
			if err := WriteHeapProfile(opts.HeapProfile + ".after-edits"); err != nil {
				return nil, fmt.Errorf("heap profile: %w", err)
			}
		}
	}
	return res, nil
}

// stormProbes, at the given time, edits one DAG file and makes one finished
// task instance a zombie (running, owned by a scheduler that never beat),
// then measures how long the schedulers take to notice each.
func stormProbes(ctx context.Context, st *store.Store, dir string, at time.Time, res *StormResult) error {
	var zombie int64
	var hash string
	if err := st.Pool.QueryRow(ctx, `SELECT ti.id FROM task_instances ti JOIN dag_runs r ON r.id = ti.run_pk
		WHERE r.dag_id = 'storm_00001' AND ti.task_id = 'b2' AND ti.state = 'success' ORDER BY ti.id LIMIT 1`).Scan(&zombie); err != nil {
		return fmt.Errorf("a task to make a zombie: %w", err)
	}
	if err := st.Pool.QueryRow(ctx, `SELECT coalesce(hash, '') FROM dags WHERE dag_id = 'storm_00000'`).Scan(&hash); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(at)):
	}
	src := strings.Replace(stormDAG(0), "catchup: false\n", "catchup: false\ndescription: edited during the storm\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "storm_00000.yaml"), []byte(src), 0o644); err != nil {
		return err
	}
	start := time.Now()
	if _, err := st.Pool.Exec(ctx, `UPDATE task_instances SET state = 'running', owner_id = 'storm-ghost', ended_at = NULL WHERE id = $1`, zombie); err != nil {
		return err
	}
	for res.EditPickedUp == 0 || res.ZombieFailed == 0 {
		if time.Since(start) > time.Minute {
			return fmt.Errorf("after a minute: edit picked up %v, zombie failed %v", res.EditPickedUp > 0, res.ZombieFailed > 0)
		}
		var now, state string
		if err := st.Pool.QueryRow(ctx, `SELECT coalesce((SELECT hash FROM dags WHERE dag_id = 'storm_00000'), ''),
			(SELECT state FROM task_instances WHERE id = $1)`, zombie).Scan(&now, &state); err != nil {
			return err
		}
		if res.EditPickedUp == 0 && now != hash {
			res.EditPickedUp = time.Since(start)
		}
		if res.ZombieFailed == 0 && state != "running" {
			res.ZombieFailed = time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// editOneFile edits storm_00000.yaml n times, each time waiting until the
// scheduler saved the new version.
func editOneFile(ctx context.Context, st *store.Store, dir string, n int) error {
	for i := 0; i < n; i++ {
		var hash string
		if err := st.Pool.QueryRow(ctx, `SELECT coalesce(hash, '') FROM dags WHERE dag_id = 'storm_00000'`).Scan(&hash); err != nil {
			return err
		}
		src := strings.Replace(stormDAG(0), "catchup: false\n", fmt.Sprintf("catchup: false\ndescription: edit %d\n", i), 1)
		if err := os.WriteFile(filepath.Join(dir, "storm_00000.yaml"), []byte(src), 0o644); err != nil {
			return err
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			var now string
			if err := st.Pool.QueryRow(ctx, `SELECT coalesce(hash, '') FROM dags WHERE dag_id = 'storm_00000'`).Scan(&now); err != nil {
				return err
			}
			if now != hash {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("edit %d of storm_00000.yaml not saved after 30 s", i)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// cacheSettle is how long the bench lets the schedulers be idle before it
// measures memory: they keep a DAG version parsed for one to two 10 s
// prune intervals after its last use, then only its source.
const cacheSettle = 25 * time.Second

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// memory is the process's RSS and live heap after a GC that returns freed
// memory to the OS: the lowest of three readings half a second apart, so
// that a burst of short-lived allocations by the schedulers' own loops
// (a sync, a sweep) at the moment of one reading is not taken for retained
// memory.
func memory() (rss, heap uint64) {
	for i := 0; i < 3; i++ {
		if i > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		r := readRSS()
		if i == 0 || ms.HeapAlloc < heap {
			heap = ms.HeapAlloc
		}
		if i == 0 || r < rss {
			rss = r
		}
	}
	return rss, heap
}

// readRSS is the process's resident set size (VmRSS).
func readRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// WriteHeapProfile writes the live heap, after a GC, to path.
func WriteHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.WriteHeapProfile(f)
}

// memoryDetail breaks the process's memory down as the Go runtime sees it.
func memoryDetail() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("heap in use %.1f MiB, stacks %.1f MiB, runtime metadata %.1f MiB, released to the OS %.1f MiB, goroutines %d",
		mib(ms.HeapInuse), mib(ms.StackSys), mib(ms.MSpanSys+ms.MCacheSys+ms.GCSys+ms.BuckHashSys+ms.OtherSys),
		mib(ms.HeapReleased), runtime.NumGoroutine())
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// waitIdle waits until no run is queued or running.
func waitIdle(ctx context.Context, st *store.Store, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var busy int
		if err := st.Pool.QueryRow(ctx, `SELECT count(*) FROM dag_runs WHERE state IN ('queued', 'running')`).Scan(&busy); err != nil {
			return err
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d runs still unfinished after %s", busy, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitRuns waits until at least n scheduled runs (or, with boundary set,
// one per DAG of that boundary) have finished successfully.
func waitRuns(ctx context.Context, st *store.Store, n int, boundary time.Time, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var done, want int
		var err error
		if boundary.IsZero() {
			want = n
			err = st.Pool.QueryRow(ctx, `SELECT count(*) FROM dag_runs WHERE state = 'success'`).Scan(&done)
		} else {
			err = st.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'success'), count(*) FROM dag_runs
				WHERE data_interval_end = $1`, boundary).Scan(&done, &want)
			if time.Now().Before(boundary) || want == 0 {
				want = -1 // not yet created
			}
		}
		if err != nil {
			return err
		}
		if want >= 0 && done >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d runs done after %s", done, want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stormDAG is one DAG of the storm: 3 bash tasks and 7 empty ones, every
// 5 minutes, unpaused, no catch-up.
func stormDAG(i int) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "dag_id: storm_%05d\nschedule: '*/5 * * * *'\nstart_date: 2026-01-01T00:00:00Z\ncatchup: false\nis_paused_upon_creation: false\ntasks:\n", i)
	sb.WriteString("  - {task_id: b0, operator: bash, bash_command: 'true', do_xcom_push: false}\n")
	for j := 0; j < 7; j++ {
		fmt.Fprintf(&sb, "  - {task_id: e%d, operator: empty, upstream: [b0]}\n", j)
	}
	sb.WriteString("  - {task_id: b1, operator: bash, bash_command: 'true', do_xcom_push: false, upstream: [e0, e1, e2, e3, e4, e5, e6]}\n")
	sb.WriteString("  - {task_id: b2, operator: bash, bash_command: 'true', do_xcom_push: false, upstream: [b1]}\n")
	return sb.String()
}
