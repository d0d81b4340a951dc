package bench_test

import (
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/bench"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// A small run of every workload: the figures exist and are plausible.
func TestBenchSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := bench.Run(ctx, st, bench.Options{ChainLength: 5, Independent: 5, ThroughputRuns: 5, ThroughputTask: 10, Workers: 8, Repeat: 1}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Chain <= 0 || res.Independent <= 0 || res.Throughput <= 0 {
		t.Errorf("figures missing: %+v", res)
	}
	if res.LatencySamples != 4 {
		t.Errorf("latency samples = %d, want 4 (edges of a 5-task chain)", res.LatencySamples)
	}
	if res.LatencyP50 <= 0 || res.LatencyP99 < res.LatencyP50 {
		t.Errorf("latencies p50 %s p99 %s", res.LatencyP50, res.LatencyP99)
	}
}

// The log-heavy workload at a small size: its lines land in a few chunks
// and its last page is read back.
func TestBenchLogsSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := bench.RunLogs(ctx, st, 5000, 4, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// 5,000 lines are 5 full chunks; the periodic flush may cut a few more,
	// and the try's own podflow lines add one or two.
	if res.Rows < 5 || res.Rows > 20 {
		t.Errorf("%d rows for 5,000 lines; want about 5 (chunks of 1,000)", res.Rows)
	}
	if res.PageLines != bench.LogPageLines || res.LastPage <= 0 || res.LinesPerSec <= 0 || res.Bytes <= 0 {
		t.Errorf("figures: %+v", res)
	}
}
