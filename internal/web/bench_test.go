package web_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/api"
	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/web"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

// The benchmark's workload: a DAG of 50 tasks with 10,000 finished runs
// (500,000 task instances), one running run, and a try with a log of
// 100,000 lines.
const (
	benchRuns     = 10000
	benchTasks    = 50
	benchLogLines = 100000
	benchLive     = 50
)

func bigDAG() string {
	var b strings.Builder
	b.WriteString("dag_id: big\ntasks:\n")
	for i := 1; i <= benchTasks; i++ {
		fmt.Fprintf(&b, "  - task_id: t%02d\n    operator: empty\n", i)
		if i > 1 {
			fmt.Fprintf(&b, "    upstream: [t%02d]\n", (i-1)/2+1) // a binary tree: a wide, deep graph
		}
	}
	return b.String()
}

// BenchmarkWebUI (`make bench`) measures, with 10,000 runs × 50 tasks in
// the database: the DAG page with its grid (server time, p50 and p95), the
// time until the page is interactive in headless Chromium, the time a
// 100,000-line log takes to open there, and the webserver's RSS growth with
// 50 live pages open on a running run.
func BenchmarkWebUI(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	parser := dag.NewParser(operators.NewRegistry(bash.New(), empty.New()).Schemas())
	d, errs := parser.ParseBytes("big.yaml", []byte(bigDAG()))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	if err := st.InTx(ctx, func(q store.Q) error { return scheduler.RegisterDAG(ctx, q, d) }); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	fill(b, st, d.Hash)
	b.Logf("filled %d runs × %d tasks and a %d-line log in %s", benchRuns, benchTasks, benchLogLines, time.Since(t0).Round(time.Second))

	authn, err := auth.New(ctx, st, auth.Config{Mode: auth.ModeNone}, nil)
	if err != nil {
		b.Fatal(err)
	}
	h, err := api.New(api.Options{Store: st, Auth: authn, Parser: parser})
	if err != nil {
		b.Fatal(err)
	}
	ui, err := web.New(web.Options{API: h.Handler, Watcher: h.Watcher})
	if err != nil {
		b.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	b.Cleanup(stop)
	go h.Watcher.Run(wctx)
	var mu sync.Mutex
	var took []time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ui.ServeHTTP(w, r)
		if r.URL.Path == "/dags/big" {
			mu.Lock()
			took = append(took, time.Since(start))
			mu.Unlock()
		}
	}))
	b.Cleanup(srv.Close)

	// The DAG page with its grid, server time.
	get := func(path string) string {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			b.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
		}
		return string(body)
	}
	page := get("/dags/big")
	if n := strings.Count(page, `class="cell s-`); n != 25*benchTasks {
		b.Fatalf("the grid shows %d cells, want %d", n, 25*benchTasks)
	}
	b.ResetTimer()
	for i := 0; i < max(b.N, 50); i++ {
		get("/dags/big?offset=" + strconv.Itoa((i%20)*25))
	}
	b.StopTimer()
	p50, p95 := quantiles(took)
	b.ReportMetric(ms(p50), "grid-p50-ms")
	b.ReportMetric(ms(p95), "grid-p95-ms")

	// In the browser: interactive, and the big log.
	if _, err := os.Stat(Chromium); err != nil {
		b.Fatalf("install chromium (apt-get install chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Chromium), chromedp.NoSandbox, chromedp.WindowSize(1400, 1000))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel2 := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	defer cancel2()
	var logOpen float64
	var tail string
	if err := chromedp.Run(bctx, chromedp.Navigate(srv.URL+"/pools")); err != nil { // start the browser
		b.Fatal(err)
	}
	var loads []time.Duration
	for i := 0; i < 7; i++ {
		var ms float64
		err := chromedp.Run(bctx,
			chromedp.Navigate(srv.URL+"/dags/big?offset="+strconv.Itoa(25*(i+3))),
			chromedp.WaitVisible("#grid"),
			chromedp.Evaluate(`performance.getEntriesByType('navigation')[0].domInteractive`, &ms))
		if err != nil {
			b.Fatal(err)
		}
		loads = append(loads, time.Duration(ms*float64(time.Millisecond)))
	}
	interactiveP50, _ := quantiles(loads)
	err = chromedp.Run(bctx,
		chromedp.Navigate(srv.URL+"/dags/big/runs/scheduled__1/tasks/t01/logs/1"),
		chromedp.WaitVisible("#log"),
		chromedp.Evaluate(`(() => { const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd; })()`, &logOpen),
		chromedp.Evaluate(`(() => { const l = document.querySelector('#log'); return l.scrollTop + l.clientHeight >= l.scrollHeight - 2 ? l.textContent.trimEnd().split('\n').pop() : 'not at the end'; })()`, &tail),
	)
	if err != nil {
		b.Fatal(err)
	}
	if tail != fmt.Sprintf("log line %d", benchLogLines) {
		b.Fatalf("the log opened showing %q, want its last line", tail)
	}
	b.ReportMetric(ms(interactiveP50), "grid-interactive-p50-ms")
	b.ReportMetric(logOpen, "log100k-open-ms")

	// 50 live pages on the running run's grid.
	before := rssMiB(b)
	lctx, stopLive := context.WithCancel(ctx)
	defer stopLive()
	updates := make(chan struct{}, benchLive*4)
	for i := 0; i < benchLive; i++ {
		go func() {
			req, _ := http.NewRequestWithContext(lctx, "GET", srv.URL+"/live?src="+url.QueryEscape("/dags/big"), nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer res.Body.Close()
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 64<<10), 8<<20)
			for sc.Scan() {
				if sc.Text() == "event: update" {
					updates <- struct{}{}
				}
			}
		}()
	}
	for i := 0; i < benchLive; i++ {
		select {
		case <-updates:
		case <-time.After(time.Minute):
			b.Fatalf("only %d of %d live pages got their first update", i, benchLive)
		}
	}
	time.Sleep(3 * time.Second) // a few wake-ups with every stream open
	after := rssMiB(b)
	b.ReportMetric(after, "rss-50live-MiB")
	b.ReportMetric(after-before, "rss-50live-growth-MiB")
}

// fill writes the workload with set-based statements: finished runs, one
// running run on top, and the log of t01's try in the oldest run.
func fill(b *testing.B, st *store.Store, hash string) {
	ctx := context.Background()
	stmts := []string{
		fmt.Sprintf(`INSERT INTO dag_runs (dag_id, run_id, dag_hash, run_type, state, logical_date, data_interval_start, data_interval_end, started_at, ended_at)
			SELECT 'big', 'scheduled__' || i, '%s', 'scheduled', CASE WHEN i %% 13 = 0 THEN 'failed' ELSE 'success' END,
				ts, ts, ts + interval '1 hour', ts + interval '1 hour', ts + interval '1 hour 5 minutes'
			FROM generate_series(1, %d) i, LATERAL (SELECT timestamptz '2025-01-01' + i * interval '1 hour' AS ts) t`, hash, benchRuns),
		fmt.Sprintf(`INSERT INTO dag_runs (dag_id, run_id, dag_hash, run_type, state, logical_date, data_interval_start, data_interval_end, started_at)
			VALUES ('big', 'manual__live', '%s', 'manual', 'running', now(), now(), now(), now())`, hash),
		fmt.Sprintf(`INSERT INTO task_instances (run_pk, dag_id, run_id, task_id, state, try_number, queued_at, started_at, ended_at)
			SELECT r.id, r.dag_id, r.run_id, 't' || lpad(j::text, 2, '0'),
				CASE WHEN r.state = 'running' THEN (CASE WHEN j < 10 THEN 'success' WHEN j < 14 THEN 'running' ELSE 'none' END)
				     WHEN r.state = 'failed' AND j = 7 THEN 'failed' WHEN r.state = 'failed' AND j > 7 THEN 'upstream_failed' ELSE 'success' END,
				1, r.started_at, r.started_at, r.ended_at
			FROM dag_runs r, generate_series(1, %d) j WHERE r.dag_id = 'big'`, benchTasks),
		fmt.Sprintf(`INSERT INTO task_log_chunks (ti_id, try_number, first_line, line_count, ats, sources, lines)
			SELECT ti.id, 1, c * 1000 + 1, 1000, array_fill(now(), ARRAY[1000]), array_fill('stdout'::text, ARRAY[1000]),
				ARRAY(SELECT 'log line ' || i FROM generate_series(c * 1000 + 1, c * 1000 + 1000) i)
			FROM task_instances ti, generate_series(0, %d / 1000 - 1) c
			WHERE ti.run_id = 'scheduled__1' AND ti.task_id = 't01'`, benchLogLines),
		`ANALYZE`,
	}
	for _, s := range stmts {
		if _, err := st.Pool.Exec(ctx, s); err != nil {
			b.Fatalf("fill: %v\n%s", err, s)
		}
	}
}

func quantiles(d []time.Duration) (p50, p95 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)*95/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rssMiB is this process's resident set (the webserver runs in it).
func rssMiB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
