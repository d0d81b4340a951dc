package web_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/webserver"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	kubetest.Stop() // the local cluster, if a test started it
	os.Exit(code)
}

// Chromium is the browser the tests drive: Debian's package, never a
// download at run time.
const Chromium = "/usr/bin/chromium"

// The DAGs the browser tests run, like the examples.
const (
	greetDAG = `dag_id: greet
description: Greets with params, then reports
tags: [example, params]
is_paused_upon_creation: false
params:
  greeting: Hello
  times: 2
  loud: false
tasks:
  - task_id: hello
    operator: bash
    bash_command: 'sleep 1; for i in $(seq {{ params.times }}); do echo "{{ params.greeting }}, {{ dag_run.conf.get("name", "world") }}!"; done'
  - task_id: shout
    operator: bash
    upstream: [hello]
    bash_command: 'echo "loud={{ params.loud }}"'
  - task_id: report
    operator: bash
    upstream: [shout]
    bash_command: 'echo "report for {{ run_id }}"'
`
	slowDAG = `dag_id: slow
is_paused_upon_creation: false
tasks:
  - task_id: ticks
    operator: bash
    bash_command: 'for i in 1 2 3 4 5 6; do echo "tick $i"; sleep 0.5; done'
`
	brokenDAG = `dag_id: broken
tasks:
  - task_id: a
    operator: bash
    bash_comand: echo typo
`
)

// browserBundle is one test's webserver, scheduler, users and browser.
type browserBundle struct {
	*flowtest.Bundle
	base string // http://127.0.0.1:port
}

func setup(t *testing.T) *browserBundle {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		t.Fatalf("the web UI's browser tests need headless Chromium at %s: install it with `apt-get install chromium` (Debian/Ubuntu); %v", Chromium, err)
	}
	b := flowtest.New(t, operators.NewRegistry(bash.New(), empty.New()))
	b.DAG("greet", greetDAG)
	b.DAG("slow", slowDAG)
	b.DAG("broken", brokenDAG)
	b.Scheduler(nil)
	for user, role := range map[string]string{"ada": "admin", "vic": "viewer"} {
		hash, err := auth.HashPassword(user + "-password")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Store.CreateUser(b.Ctx, user, hash, role); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{DatabaseURL: b.URL, DagsFolder: b.Dir, Auth: auth.ModeBuiltin}
	addr := make(chan net.Addr, 1)
	serve, err := webserver.New(b.Ctx, b.Store, cfg, "127.0.0.1:0", prometheus.NewRegistry(), flowtest.Logger(), func(a net.Addr) { addr <- a })
	if err != nil {
		t.Fatal(err)
	}
	b.Go("webserver", serve)
	bb := &browserBundle{Bundle: b, base: "http://" + (<-addr).String()}
	b.WaitFor("the DAGs parsed", 30*time.Second, func() bool {
		_, err := b.Store.Dag(b.Ctx, "greet")
		_, err2 := b.Store.Dag(b.Ctx, "slow")
		return err == nil && err2 == nil
	})
	return bb
}

// browser starts a headless Chromium with its own profile (cookies).
func (b *browserBundle) browser() context.Context {
	b.T.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(Chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1400, 1000))
	actx, cancel := chromedp.NewExecAllocator(b.Ctx, opts...)
	b.T.Cleanup(cancel)
	// chromedp logs CDP events newer than its protocol version; they are noise.
	ctx, cancel2 := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	b.T.Cleanup(cancel2)
	if err := chromedp.Run(ctx); err != nil {
		b.T.Fatalf("start %s: %v", Chromium, err)
	}
	return ctx
}

// run runs browser actions with a deadline, failing the test with what.
func (b *browserBundle) run(ctx context.Context, what string, actions ...chromedp.Action) {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.T.Fatalf("%s: %v", what, err)
	}
}

func (b *browserBundle) login(ctx context.Context, user string) {
	b.T.Helper()
	b.run(ctx, "log in as "+user,
		chromedp.Navigate(b.base+"/"),
		chromedp.WaitVisible(`#login`),
		chromedp.SendKeys(`#username`, user),
		chromedp.SendKeys(`#password`, user+"-password"),
		chromedp.Submit(`#login`),
		chromedp.WaitVisible(`#me`),
	)
}

// waitPage waits until cond holds in the page, through reloads and
// navigations (which interrupt a plain poll).
func (b *browserBundle) waitPage(ctx context.Context, what, cond string) {
	b.T.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		var ok bool
		lastErr = chromedp.Run(ctx, eval(`(() => { try { return !!(`+cond+`); } catch (e) { return false; } })()`, &ok))
		if lastErr == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.T.Fatalf("%s: %s did not hold in 45s (last error %v)", what, cond, lastErr)
}

// countRequests records every fetch and EventSource a page makes, in
// window.__requests.
const countRequests = `window.__requests = [];
(() => {
  const ES = window.EventSource, f = window.fetch;
  window.EventSource = function (u, o) { window.__requests.push('EventSource ' + u); return new ES(u, o); };
  window.fetch = function (u, o) { window.__requests.push('fetch ' + u); return f(u, o); };
})();`

// eval evaluates JavaScript (awaiting a promise) into out.
func eval(js string, out any) chromedp.Action {
	return chromedp.Evaluate(js, out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) })
}

// poll waits until the JavaScript condition holds in the page.
func poll(cond string) chromedp.Action {
	return chromedp.Poll(cond, nil, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(45*time.Second))
}

// TestBrowserOperatorDay is what an operator does in a day, in a real
// Chromium against the real webserver and scheduler: log in, see a broken
// file's import error, trigger a DAG with params through the form and watch
// the grid turn green without reloading, read a log, follow a running
// task's log live, clear a task with its downstream and see it rerun, mark
// a run failed.
func TestBrowserOperatorDay(t *testing.T) {
	b := setup(t)
	ctx := b.browser()

	// Given a logged-in admin, whose pages' requests the test counts
	b.run(ctx, "count requests", chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(countRequests).Do(ctx)
		return err
	}))
	b.login(ctx, "ada")

	// Then the DAG list shows the broken file with path:line:col
	var banner string
	b.run(ctx, "import error banner",
		poll(`document.querySelector('#import-errors') !== null`),
		chromedp.Text(`#import-errors`, &banner),
	)
	if !strings.Contains(banner, "broken.yaml:5:") || !strings.Contains(banner, "bash_comand") {
		t.Errorf("import error banner says %q; want broken.yaml:5:col and the bad key", banner)
	}

	// When the admin triggers greet through the form with params
	var marker bool
	b.run(ctx, "trigger greet through the form",
		chromedp.Navigate(b.base+"/dags/greet/trigger"),
		chromedp.WaitVisible(`#trigger`),
		chromedp.SetValue(`#p-greeting`, "Bonjour"),
		chromedp.SetValue(`#p-times`, "3"),
		chromedp.SetValue(`#conf`, `{"name": "Ada"}`),
		chromedp.Click(`#trigger-submit`),
		chromedp.WaitVisible(`#grid`),
		eval(`window.__sameDocument = true`, &marker),
	)
	var opened []string
	b.run(ctx, "the grid of a queued run subscribes", eval(`window.__requests`, &opened))
	if len(opened) != 1 || !strings.HasPrefix(opened[0], "EventSource /live?src=") {
		t.Errorf("the grid with a queued run made the requests %v, want one EventSource on /live", opened)
	}
	// Then the grid turns green live, in the same document (no reload)
	b.run(ctx, "grid turns green live",
		poll(`document.querySelectorAll('#grid tbody tr').length === 3 && [...document.querySelectorAll('#grid tbody tr')].every(r => r.querySelector('td .cell.s-success'))`),
	)
	if err := chromedp.Run(ctx, eval(`window.__sameDocument === true`, &marker)); err != nil || !marker {
		t.Errorf("the grid turned green by a reload, not live (%v)", err)
	}
	// And the keyboard moves through the grid: down from hello is shout.
	var focused string
	b.run(ctx, "grid keyboard navigation",
		chromedp.Focus(`#grid tbody tr:first-child td a.cell`),
		chromedp.KeyEvent(kb.ArrowDown),
		eval(`document.activeElement.title`, &focused),
	)
	if !strings.HasPrefix(focused, "shout · ") {
		t.Errorf("ArrowDown from hello's cell focused %q, want shout's", focused)
	}
	runs, _, err := b.Store.ListRuns(b.Ctx, store.RunFilter{DagID: "greet", Limit: 10})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs of greet: %v %v", runs, err)
	}
	run := runs[0]
	if !strings.Contains(string(run.Conf), `"greeting":"Bonjour"`) && !strings.Contains(string(run.Conf), `"greeting": "Bonjour"`) {
		t.Errorf("the run's conf %s lacks the form's greeting", run.Conf)
	}

	// When the admin opens a task's log (from the grid cell, then the try)
	var logText string
	b.run(ctx, "open hello's log",
		chromedp.Click(`#grid tbody tr:first-child td a.cell`),
		chromedp.WaitVisible(`a.log-link`),
		chromedp.Click(`a.log-link`),
		chromedp.WaitVisible(`#log`),
		chromedp.Text(`#log`, &logText),
	)
	// Then each line links to itself: the link opens the page at that line,
	// highlighted, and the line numbers are not part of the text (Ctrl-F,
	// copy).
	if !strings.HasPrefix(logText, "starting") {
		t.Errorf("the log's text starts %.40q, want the first line's text without a line number", logText)
	}
	var target, href string
	b.run(ctx, "line 3's link", eval(`document.querySelector('#L3 a.ln').href`, &href))
	if !strings.HasSuffix(href, "?line=3#L3") {
		t.Errorf("line 3 links to %q", href)
	}
	b.run(ctx, "follow line 3's link",
		chromedp.Navigate(href),
		chromedp.WaitVisible(`#log`),
		eval(`document.querySelector(':target') ? document.querySelector(':target').id + '|' + document.querySelector(':target').textContent : ''`, &target),
	)
	if !strings.HasPrefix(target, "L3|") || !strings.Contains(logText, strings.TrimPrefix(target, "L3|")) {
		t.Errorf("after following %q the highlighted line is %q", href, target)
	}
	var rendered string
	b.run(ctx, "rendered templates", chromedp.Navigate(fmt.Sprintf("%s/dags/greet/runs/%s/tasks/hello", b.base, run.RunID)),
		chromedp.Text(`#rendered + table`, &rendered))
	if !strings.Contains(rendered, `for i in $(seq 3); do echo "Bonjour, Ada!"; done`) {
		t.Errorf("hello's rendered bash_command: %q", rendered)
	}
	if strings.Count(logText, "Bonjour, Ada!") != 3 {
		t.Errorf("hello's log:\n%s\nwant 3 × 'Bonjour, Ada!'", logText)
	}

	// When a slow task runs and the admin opens its log
	slowRun := b.Trigger("slow", "")
	b.WaitFor("ticks running", 30*time.Second, func() bool {
		return b.States("slow", slowRun)["ticks"] == "running"
	})
	var status string
	b.run(ctx, "follow the running log",
		chromedp.Navigate(fmt.Sprintf("%s/dags/slow/runs/%s/tasks/ticks/logs/1", b.base, slowRun)),
		chromedp.WaitVisible(`#log`),
		chromedp.Text(`#log-status`, &status),
	)
	if !strings.Contains(status, "following") {
		t.Errorf("the log of a running try says %q, want it following", status)
	}
	// Then the lines arrive live and the follow ends with the try
	b.run(ctx, "follow to the end",
		poll(`document.querySelector('#log-status').dataset.ended === 'success'`),
		chromedp.Text(`#log`, &logText),
	)
	for i := 1; i <= 6; i++ {
		if strings.Count(logText, fmt.Sprintf("tick %d\n", i)) != 1 {
			t.Errorf("followed log lacks (or repeats) tick %d:\n%s", i, logText)
		}
	}

	// When the admin clears hello with its downstream (after a dry-run preview)
	var preview string
	b.run(ctx, "clear hello with downstream",
		chromedp.Navigate(fmt.Sprintf("%s/dags/greet/runs/%s/tasks/hello", b.base, run.RunID)),
		chromedp.WaitVisible(`#task-actions`),
		chromedp.Click(`button[data-action="clear-task"]`),
		chromedp.WaitVisible(`#preview`),
		chromedp.Text(`#preview-list`, &preview),
	)
	for _, task := range []string{"hello", "shout", "report"} {
		if !strings.Contains(preview, task) {
			t.Errorf("clear preview %q lacks %s", preview, task)
		}
	}
	b.run(ctx, "confirm the clear", chromedp.Click(`#preview-ok`))
	// Then the tasks rerun: try 2, success, shown on the task page
	b.waitPage(ctx, "hello reruns", `document.querySelector('#task-state') && document.querySelector('#task-state').textContent.includes('success') && document.body.textContent.includes('log of try 2')`)
	if st := b.WaitRun("greet", run.RunID, 30*time.Second); st != "success" {
		t.Fatalf("cleared run ended %s", st)
	}
	tis, err := b.Store.TaskInstances(b.Ctx, run.PK)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		if ti.TryNumber != 2 {
			t.Errorf("%s is at try %d after the clear with downstream, want 2", ti.TaskID, ti.TryNumber)
		}
	}

	// When the admin marks the run failed
	b.run(ctx, "mark the run failed",
		chromedp.Navigate(fmt.Sprintf("%s/dags/greet/runs/%s", b.base, run.RunID)),
		chromedp.WaitVisible(`#run-actions`),
		chromedp.Click(`button[data-action="mark-run"][data-state="failed"]`),
	)
	b.waitPage(ctx, "the page shows the run failed", `document.querySelector('#run-state').textContent.includes('failed')`)
	got, err := b.Store.Run(b.Ctx, "greet", run.RunID)
	if err != nil || got.State != "failed" {
		t.Errorf("run after mark failed: %s %v", got.State, err)
	}

	// And an idle page (nothing running) makes no requests after it loaded
	var requests []string
	b.run(ctx, "idle grid",
		chromedp.Navigate(b.base+"/dags/greet"),
		chromedp.WaitVisible(`#grid`),
		chromedp.Sleep(2500*time.Millisecond),
		eval(`window.__requests`, &requests),
	)
	if len(requests) != 0 {
		t.Errorf("an idle grid page made requests after loading: %v", requests)
	}

	// And the audit log names who did it
	var audit string
	b.run(ctx, "audit log", chromedp.Navigate(b.base+"/audit?dag_id=greet"), chromedp.Text(`main table`, &audit))
	for _, want := range []string{"trigger", "clear", "mark_run", "ada"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log page lacks %q:\n%s", want, audit)
		}
	}
}

// TestBrowserViewer: a viewer sees no trigger form nor action buttons, and
// the API refuses the trigger when the viewer's page calls it anyway.
func TestBrowserViewer(t *testing.T) {
	b := setup(t)
	ctx := b.browser()
	b.login(ctx, "vic")
	runID := b.Trigger("greet", "")
	var forms, buttons int
	var status int
	b.run(ctx, "viewer's pages",
		chromedp.Navigate(b.base+"/dags/greet/trigger"),
		chromedp.WaitVisible(`.daghead`),
		eval(`document.querySelectorAll('#trigger, #trigger-submit').length`, &forms),
		chromedp.Navigate(fmt.Sprintf("%s/dags/greet/runs/%s", b.base, runID)),
		chromedp.WaitVisible(`#run-state`),
		eval(`document.querySelectorAll('button[data-action], input[data-pause]').length`, &buttons),
		eval(`fetch('/api/v1/dags/greet/dagRuns', {method: 'POST', credentials: 'same-origin',
			headers: {'X-Requested-With': 'podflow', 'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)`, &status),
	)
	if forms != 0 || buttons != 0 {
		t.Errorf("a viewer sees %d trigger form parts and %d action buttons, want none", forms, buttons)
	}
	if status != http.StatusForbidden {
		t.Errorf("a viewer's trigger through the API answered %d, want 403", status)
	}
	// And a cookie-authenticated change without the CSRF header is refused too.
	b.run(ctx, "no CSRF header",
		eval(`fetch('/api/v1/dags/greet', {method: 'PATCH', credentials: 'same-origin', headers: {'Content-Type': 'application/json'}, body: '{"is_paused": true}'}).then(r => r.status)`, &status))
	if status != http.StatusForbidden {
		t.Errorf("a cookie change without X-Requested-With answered %d, want 403", status)
	}
}
