package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

// benchServer is a server on a fresh database with the etl DAG registered,
// timing each request inside the server.
type benchServer struct {
	st   *store.Store
	srv  *httptest.Server
	h    *Handler
	d    *dag.DAG
	mu   sync.Mutex
	took []time.Duration
}

func newBenchServer(b *testing.B) *benchServer {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	parser := dag.NewParser(operators.NewRegistry(bash.New(), empty.New()).Schemas())
	d, errs := parser.ParseBytes("etl.yaml", []byte(etlDAG))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	if err := st.InTx(ctx, func(q store.Q) error { return scheduler.RegisterDAG(ctx, q, d) }); err != nil {
		b.Fatal(err)
	}
	h, err := New(Options{Store: st, Auth: tokenAuth{}, Parser: parser})
	if err != nil {
		b.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); h.Watcher.Run(wctx) }()
	bs := &benchServer{st: st, h: h, d: d}
	bs.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		h.ServeHTTP(w, r)
		bs.mu.Lock()
		bs.took = append(bs.took, time.Since(t0))
		bs.mu.Unlock()
	}))
	b.Cleanup(func() { bs.srv.Close(); stop(); <-done })
	return bs
}

// quantile of the server times recorded so far.
func (bs *benchServer) quantile(q float64) time.Duration {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if len(bs.took) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), bs.took...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))]
}

func (bs *benchServer) get(b *testing.B, path string) {
	req, _ := http.NewRequest("GET", bs.srv.URL+BasePath+path, nil)
	req.Header.Set("Authorization", "Bearer viewer")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	var page struct {
		DagRuns []json.RawMessage `json:"dag_runs"`
		Total   int               `json:"total_entries"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil || res.StatusCode != 200 || len(page.DagRuns) != 100 {
		b.Fatalf("GET %s: %d, %d runs, %v", path, res.StatusCode, len(page.DagRuns), err)
	}
}

// BenchmarkListDagRuns: the first page (100) of GET dagRuns, across DAGs
// and for one DAG, with 100,000 runs in the table; p50/p99 are server time.
func BenchmarkListDagRuns(b *testing.B) {
	bs := newBenchServer(b)
	ctx := context.Background()
	// Fixture: 100,000 finished runs of etl, one an hour back from now,
	// vacuumed as autovacuum would have (counts read the index only).
	_, err := bs.st.Pool.Exec(ctx, `INSERT INTO dag_runs (dag_id, run_id, dag_hash, run_type, state, logical_date,
			data_interval_start, data_interval_end, started_at, ended_at)
		SELECT 'etl', 'scheduled__' || i, $1, 'scheduled', CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'success' END,
			now() - i * interval '1 hour', now() - i * interval '1 hour', now() - i * interval '1 hour',
			now() - i * interval '1 hour', now() - i * interval '1 hour' + interval '1 minute'
		FROM generate_series(1, 100000) AS i`, bs.d.Hash)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bs.st.Pool.Exec(ctx, `VACUUM ANALYZE dag_runs`); err != nil {
		b.Fatal(err)
	}
	for _, path := range []string{"/dags/~/dagRuns", "/dags/etl/dagRuns", "/dags/etl/dagRuns?state=failed&order_by=-start_date"} {
		b.Run(strings.NewReplacer("/", "_", "?", "_", "&", "_", "=", "_", "~", "all").Replace(path), func(b *testing.B) {
			bs.mu.Lock()
			bs.took = nil
			bs.mu.Unlock()
			for i := 0; i < b.N; i++ {
				bs.get(b, path)
			}
			b.ReportMetric(float64(bs.quantile(0.5).Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(bs.quantile(0.99).Microseconds())/1000, "p99_ms")
		})
	}
}

// BenchmarkWaitStreams500: 500 wait streams open at once on one server
// while their runs are queued; then every run is marked success in one
// transaction and each stream must end with "success". Reports the time
// until all ended, the database connections the server's pool held, and
// the test process's RSS (server and clients together) with all 500 open.
func BenchmarkWaitStreams500(b *testing.B) {
	const streams = 500
	for i := 0; i < b.N; i++ {
		bs := newBenchServer(b)
		ctx := context.Background()
		var runs []string
		for j := 0; j < streams; j++ {
			id, _, err := scheduler.CreateRun(ctx, bs.st.Q, bs.d, "manual", time.Now().UTC().Add(time.Duration(j)*time.Second), nil)
			if err != nil {
				b.Fatal(err)
			}
			runs = append(runs, id)
		}
		tr := &http.Transport{MaxIdleConnsPerHost: streams, MaxConnsPerHost: 0}
		client := &http.Client{Transport: tr}
		var wg sync.WaitGroup
		errs := make(chan error, streams)
		for _, id := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", bs.srv.URL+BasePath+"/dags/etl/dagRuns/"+id+"/wait?interval=300", nil)
				req.Header.Set("Authorization", "Bearer viewer")
				res, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				defer res.Body.Close()
				last := ""
				sc := bufio.NewScanner(res.Body)
				for sc.Scan() {
					last = sc.Text()
				}
				if last != `{"state":"success"}` {
					errs <- fmt.Errorf("run %s: last line %q (status %d)", id, last, res.StatusCode)
				}
			}()
		}
		deadline := time.Now().Add(time.Minute)
		for bs.h.Watcher.Watching() < streams {
			if time.Now().After(deadline) {
				b.Fatalf("only %d streams open", bs.h.Watcher.Watching())
			}
			time.Sleep(20 * time.Millisecond)
		}
		rss := rssMiB()
		conns := bs.st.Pool.Stat().TotalConns()
		t0 := time.Now()
		err := bs.st.InTx(ctx, func(q store.Q) error {
			for _, id := range runs {
				r, err := q.Run(ctx, "etl", id)
				if err != nil {
					return err
				}
				if _, err := q.MarkRun(ctx, r.PK, "success"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Error(err)
		}
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "all_ended_ms")
		b.ReportMetric(rss, "rss_MiB")
		b.ReportMetric(float64(conns), "db_conns")
		tr.CloseIdleConnections()
	}
}

// rssMiB is this process's resident set size.
func rssMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkTriggerVisible: POST a run, then GET it: the time until a
// triggered run is visible through the API (p50 of the pair, client side).
func BenchmarkTriggerVisible(b *testing.B) {
	bs := newBenchServer(b)
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		body := fmt.Sprintf(`{"dag_run_id": "bench_%d", "conf": {"i": %d}}`, i, i)
		req, _ := http.NewRequest("POST", bs.srv.URL+BasePath+"/dags/etl/dagRuns", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer op")
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("trigger: %v %v", res, err)
		}
		res.Body.Close()
		req, _ = http.NewRequest("GET", bs.srv.URL+BasePath+fmt.Sprintf("/dags/etl/dagRuns/bench_%d", i), nil)
		req.Header.Set("Authorization", "Bearer viewer")
		res, err = http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("get: %v %v", res, err)
		}
		res.Body.Close()
		took = append(took, time.Since(t0))
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50_ms")
}
