package scheduler_test

import (
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/secrets"
)

// The log-heavy bash task: 100,000 lines, one in a thousand holding a
// secret.
const logHeavyDAG = `dag_id: logheavy
tasks:
  - task_id: print
    operator: bash
    bash_command: >-
      seq 100000 | awk '{ if ($1 % 1000 == 0) print "token=tok-0123456789abcdef"; else print "line " $1 " of a log-heavy task, rows=1000 elapsed=35ms status=ok" }'
`

// TestMaskingOverheadOnLogHeavyTask runs the log-heavy task on a scheduler
// without masking and on one masking 21 secrets (each in its 7 encoded
// forms), interleaved; it checks that every secret line was masked and
// prints the fastest task durations and the median CPU time podflow spent,
// the figures the README quotes (not asserted: see the end).
func TestMaskingOverheadOnLogHeavyTask(t *testing.T) {
	if testing.Short() {
		t.Skip("log-heavy benchmark: not in -short mode")
	}
	masker := secrets.NewMasker(nil)
	for i := 0; i < 20; i++ {
		masker.Add(fmt.Sprintf("secret-value-%02d-xyz", i))
	}
	masker.Add("tok-0123456789abcdef")
	plain, masked := setup(t), setup(t)
	plain.DAG("logheavy", logHeavyDAG)
	masked.DAG("logheavy", logHeavyDAG)
	plain.Scheduler(nil)
	masked.Scheduler(func(c *scheduler.Config) { c.Mask = masker.Mask })

	// cpu is the CPU time this process (both schedulers, their log writers)
	// spent during a run: the part of the cost masking adds to, and far less
	// noisy on a shared machine than wall time.
	run := func(b *testBundle) (time.Duration, time.Duration) {
		t.Helper()
		before := processCPU(t)
		runID := b.Trigger("logheavy", "")
		if got := b.WaitRun("logheavy", runID, 2*time.Minute); got != runstate.RunSuccess {
			t.Fatalf("log-heavy run: %s", got)
		}
		var d time.Duration
		if err := b.Store.Pool.QueryRow(b.Ctx, `SELECT ended_at - started_at FROM task_instances WHERE run_id = $1`, runID).Scan(&d); err != nil {
			t.Fatal(err)
		}
		// The periodic flush may still be writing the last lines: let it
		// finish before the next run, so runs do not overlap.
		b.WaitFor("the run's 100,000 log lines", time.Minute, func() bool {
			var n int
			err := b.Store.Pool.QueryRow(b.Ctx, `SELECT count(*) FROM task_logs l JOIN task_instances ti ON ti.id = l.ti_id
				WHERE ti.run_id = $1 AND l.source = 'stdout'`, runID).Scan(&n)
			return err == nil && n == 100000
		})
		return d, processCPU(t) - before
	}
	rounds := 9
	if raceEnabled {
		// make test runs this package under -race only: one round checks
		// the masking, and the timings mean nothing there anyway.
		rounds = 1
	}
	var off, on, cpuOff, cpuOn []time.Duration
	for i := 0; i < rounds; i++ {
		d, c := run(plain)
		off, cpuOff = append(off, d), append(cpuOff, c)
		d, c = run(masked)
		on, cpuOn = append(on, d), append(cpuOn, c)
	}
	// The fastest of many runs: a shared machine's noise only ever adds.
	mOff, mOn := fastest(off), fastest(on)
	overhead := float64(mOn-mOff) / float64(mOff) * 100
	cOff, cOn := median(cpuOff), median(cpuOn)
	t.Logf("100,000-line bash task, fastest of %d: %v without masking, %v with 21 secrets masked: %+.1f%% wall; podflow's own CPU (median) %v → %v: %+.1f%%",
		rounds, mOff.Round(time.Millisecond), mOn.Round(time.Millisecond), overhead,
		cOff.Round(time.Millisecond), cOn.Round(time.Millisecond), float64(cOn-cOff)/float64(cOff)*100)

	var lines, secretsShown, maskedLines int
	if err := masked.Store.Pool.QueryRow(masked.Ctx, `SELECT count(*), count(*) FILTER (WHERE line LIKE '%tok-0123456789abcdef%'),
		count(*) FILTER (WHERE line = 'token=***') FROM task_logs`).Scan(&lines, &secretsShown, &maskedLines); err != nil {
		t.Fatal(err)
	}
	if secretsShown != 0 || maskedLines != rounds*100 || lines < rounds*100000 {
		t.Errorf("masked logs: %d lines, %d show the token, %d masked (want 0 and %d)", lines, secretsShown, maskedLines, rounds*100)
	}
	// The budget is 10% of podflow's CPU. It is reported, not asserted:
	// while other test binaries run on the same two cores, the median CPU
	// time of these short runs swings by ±30% either way (quiet: −31.7% and
	// +2.5% wall in one run; in CI beside other packages: +15.9% CPU and
	// −9% wall), far more than masking's ~2% (BenchmarkMaskLine: 85 ns a
	// line). Rerun it alone for the figure (see the README, "Cost").
}

func fastest(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
