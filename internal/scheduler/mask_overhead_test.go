package scheduler_test

import (
	"fmt"
	"sort"
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
// forms), interleaved, and compares the median task durations. It prints
// the figures the README quotes.
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

	run := func(b *testBundle) time.Duration {
		t.Helper()
		runID := b.Trigger("logheavy", "")
		if got := b.WaitRun("logheavy", runID, 2*time.Minute); got != runstate.RunSuccess {
			t.Fatalf("log-heavy run: %s", got)
		}
		var d time.Duration
		if err := b.Store.Pool.QueryRow(b.Ctx, `SELECT ended_at - started_at FROM task_instances WHERE run_id = $1`, runID).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	var off, on []time.Duration
	for i := 0; i < 5; i++ {
		off = append(off, run(plain))
		on = append(on, run(masked))
	}
	mOff, mOn := median(off), median(on)
	overhead := float64(mOn-mOff) / float64(mOff) * 100
	t.Logf("100,000-line bash task: median %v without masking, %v with 21 secrets masked: %+.1f%% (runs off %v, on %v)", mOff, mOn, overhead, off, on)

	var lines, secretsShown, maskedLines int
	if err := masked.Store.Pool.QueryRow(masked.Ctx, `SELECT count(*), count(*) FILTER (WHERE line LIKE '%tok-0123456789abcdef%'),
		count(*) FILTER (WHERE line = 'token=***') FROM task_logs`).Scan(&lines, &secretsShown, &maskedLines); err != nil {
		t.Fatal(err)
	}
	if secretsShown != 0 || maskedLines != 5*100 || lines < 5*100000 {
		t.Errorf("masked logs: %d lines, %d show the token, %d masked (want 0 and 500)", lines, secretsShown, maskedLines)
	}
	// The budget is 10%; the bound leaves room for a shared machine's noise
	// around a median of five.
	if overhead > 15 {
		t.Errorf("masking costs %.1f%% on the log-heavy task (budget 10%%)", overhead)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
