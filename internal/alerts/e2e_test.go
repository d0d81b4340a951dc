package alerts_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/podflow/podflow/internal/alerts"
	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
	"github.com/podflow/podflow/operators/empty"
)

func TestMain(m *testing.M) {
	os.Exit(flowtest.Main(m, map[string]func(*flowtest.Child) error{"scheduler": runChildScheduler}, kubetest.Stop))
}

const secret = "s3cret-key"

// receiver is a webhook receiver that checks every delivery's signature as
// the README tells receivers to.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	mode atomic.Int32  // modeOK, modeFail (500), modeHang
	done chan struct{} // closed at cleanup: hanging handlers return
	mu   sync.Mutex
	got  []delivery
}

const (
	modeOK = iota
	modeFail
	modeHang
)

type delivery struct {
	id    string
	sigOK bool
	msg   alerts.Message
	hdr   http.Header
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, done: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() { close(r.done); r.srv.Close() })
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	switch r.mode.Load() {
	case modeFail:
		http.Error(w, "receiver broken", http.StatusInternalServerError)
		return
	case modeHang:
		select {
		case <-req.Context().Done():
		case <-r.done:
		}
		return
	}
	body, _ := io.ReadAll(req.Body)
	// The receiver's check, as in the README.
	ts := req.Header.Get("X-Podflow-Timestamp")
	want := alerts.Sign([]byte(secret), ts, body)
	sec, _ := strconv.ParseInt(ts, 10, 64)
	ok := hmac.Equal([]byte(req.Header.Get("X-Podflow-Signature")), []byte(want)) && time.Since(time.Unix(sec, 0)).Abs() < 5*time.Minute
	var m alerts.Message
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("delivery body %s: %v", body, err)
	}
	r.mu.Lock()
	r.got = append(r.got, delivery{id: req.Header.Get("X-Podflow-Delivery"), sigOK: ok, msg: m, hdr: req.Header.Clone()})
	r.mu.Unlock()
	fmt.Fprint(w, `{"ok":true}`)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// keys lists deliveries as "task event try", sorted ("" task: the run).
func keys(ds []delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s %s %d", d.msg.TaskID, d.msg.Event, d.msg.TryNumber))
	}
	sort.Strings(out)
	return out
}

type env struct {
	*flowtest.Bundle
	hook *receiver
}

func setup(t *testing.T) *env {
	t.Parallel()
	return &env{Bundle: flowtest.New(t, operators.NewRegistry(bash.New(), empty.New())), hook: newReceiver(t)}
}

// fastPolicy keeps the down-then-up shape of production's backoff, scaled.
var fastPolicy = alerts.Policy{Backoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second, GiveUpAfter: time.Minute, Timeout: 2 * time.Second}

func (e *env) deliverer(extra map[string]alerts.Sender) *alerts.Deliverer {
	senders := map[string]alerts.Sender{"ops": &alerts.Webhook{URL: e.hook.srv.URL, Secret: secret, Headers: map[string]string{"X-Team": "data"}}}
	for k, v := range extra {
		senders[k] = v
	}
	return &alerts.Deliverer{Senders: senders, Policy: fastPolicy, BaseURL: "http://ui.test", Poll: 100 * time.Millisecond}
}

// scheduler starts an in-process scheduler that delivers alerts with d.
func (e *env) scheduler(d *alerts.Deliverer, mod func(*scheduler.Config)) {
	e.Scheduler(func(c *scheduler.Config) {
		c.Alerts = d
		if mod != nil {
			mod(c)
		}
	})
}

// settle waits until the outbox is empty (everything delivered or given up).
func (e *env) settle(timeout time.Duration) {
	e.WaitFor("the outbox to drain", timeout, func() bool {
		n, err := e.Store.OutboxDepth(e.Ctx)
		return err == nil && n == 0
	})
}

// state is a task instance's state, "" before it exists.
func (e *env) state(dagID, runID, taskID string) string {
	for _, ti := range e.TIs(dagID, runID) {
		if ti.TaskID == taskID {
			return ti.State
		}
	}
	return ""
}

func wantKeys(t *testing.T, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("deliveries:\n got %q\nwant %q", got, want)
	}
}

// A failing bash task fires its failure callback (webhook, signed, and an
// email) and the DAG's; the task that never ran (upstream_failed) fires
// nothing; the succeeding task its success callback.
func TestFailingBashTask(t *testing.T) {
	e := setup(t)
	mailbox := newSMTPServer(t)
	e.DAG("nightly", `
dag_id: nightly
on_failure_callback: [ops]
default_args: {on_failure_callback: [ops]}
tasks:
  - {task_id: ok, operator: bash, bash_command: "true", on_success_callback: [ops]}
  - task_id: load
    operator: bash
    bash_command: "echo loading; exit 3"
    upstream: [ok]
    on_failure_callback: [ops, {notifier: mail, message: "{{ ti.task_id }} of {{ dag.dag_id }} broke on {{ ds }}: {{ exception }}"}]
  - {task_id: report, operator: bash, bash_command: "true", upstream: [load]}
`)
	e.scheduler(e.deliverer(map[string]alerts.Sender{"mail": mailbox.sender()}), nil)
	runID := e.Trigger("nightly", "")
	if st := e.WaitRun("nightly", runID, time.Minute); st != runstate.RunFailed {
		t.Fatalf("run %s", st)
	}
	e.settle(time.Minute)
	ds := e.hook.deliveries()
	wantKeys(t, keys(ds), "ok success 1", "load failure 1", " failure 0")
	for _, d := range ds {
		if !d.sigOK {
			t.Errorf("delivery %s: bad signature", d.id)
		}
		if d.id == "" || d.id != d.msg.ID || d.hdr.Get("X-Team") != "data" || d.hdr.Get("X-Podflow-Event") != d.msg.Event {
			t.Errorf("delivery headers %v for %+v", d.hdr, d.msg)
		}
		if d.msg.DagID != "nightly" || d.msg.RunID != runID || d.msg.Link != "http://ui.test/dags/nightly/runs/"+runID {
			t.Errorf("delivery %+v", d.msg)
		}
		if d.msg.TaskID == "load" && (d.msg.State != "failed" || !strings.Contains(d.msg.Error, "exit code 3") ||
			!strings.Contains(d.msg.Text, "Task load of nightly failed")) {
			t.Errorf("load's failure: %+v", d.msg)
		}
		if d.msg.TaskID == "" && d.msg.Error != "failed tasks: load" {
			t.Errorf("run failure error %q", d.msg.Error)
		}
	}
	// The email: one, over STARTTLS with auth, both parts, the template rendered.
	mails := mailbox.messages()
	if len(mails) != 1 {
		t.Fatalf("%d emails, want 1", len(mails))
	}
	m := mails[0]
	if !m.tls || m.user != "alerts" || m.from != "alerts@podflow.test" || strings.Join(m.to, ",") != "oncall@podflow.test" {
		t.Errorf("SMTP session %+v", m)
	}
	text, html := m.parts()
	day := time.Now().UTC().Format("2006-01-02")
	if !strings.HasPrefix(text, "load of nightly broke on "+day+": ") || !strings.Contains(text, "exit code 3") {
		t.Errorf("email text %q", text)
	}
	if !strings.Contains(html, "<h2>Task load of nightly failed</h2>") || !strings.Contains(html, "/dags/nightly/runs/") {
		t.Errorf("email html %q", html)
	}
	if !strings.Contains(m.subject, "[podflow] Task load of nightly failed") {
		t.Errorf("subject %q", m.subject)
	}
}

// A task that fails, retries and fails again: one retry alert (try 1),
// one failure alert (try 2), and the execute callback for each try.
func TestRetriedTask(t *testing.T) {
	e := setup(t)
	e.DAG("flaky", `
dag_id: flaky
tasks:
  - task_id: t
    operator: bash
    bash_command: "exit 1"
    retries: 1
    retry_delay: 0s
    on_retry_callback: [ops]
    on_failure_callback: [ops]
    on_execute_callback: [ops]
`)
	e.scheduler(e.deliverer(nil), nil)
	runID := e.Trigger("flaky", "")
	e.WaitRun("flaky", runID, time.Minute)
	e.settle(time.Minute)
	wantKeys(t, keys(e.hook.deliveries()), "t execute 1", "t retry 1", "t execute 2", "t failure 2")
}

// A run over its dagrun_timeout fails its running task, which fires its
// failure callback with the reason, and the DAG's; the deadline (1 s after
// queued_at) fires once.
func TestRunTimeoutAndDeadline(t *testing.T) {
	e := setup(t)
	e.DAG("slow", `
dag_id: slow
dagrun_timeout: 3s
on_failure_callback: [ops]
deadline: {reference: queued_at, interval: 1s, notify: [ops]}
tasks:
  - {task_id: sleep, operator: bash, bash_command: "sleep 60", on_failure_callback: [ops]}
`)
	e.scheduler(e.deliverer(nil), nil)
	runID := e.Trigger("slow", "")
	if st := e.WaitRun("slow", runID, time.Minute); st != runstate.RunFailed {
		t.Fatalf("run %s", st)
	}
	e.settle(time.Minute)
	time.Sleep(500 * time.Millisecond) // a few more deadline checks: still one
	ds := e.hook.deliveries()
	wantKeys(t, keys(ds), " deadline 0", "sleep failure 1", " failure 0")
	for _, d := range ds {
		if d.msg.Event == "failure" && !strings.Contains(d.msg.Error, "dagrun_timeout") {
			t.Errorf("%s failure error %q lacks the reason", d.msg.TaskID, d.msg.Error)
		}
		if d.msg.Event == "deadline" && (d.msg.Deadline == "" || !strings.Contains(d.msg.Text, "missed its deadline")) {
			t.Errorf("deadline message %+v", d.msg)
		}
	}
}

// A deadline that passed while no scheduler delivered alerts fires when
// one starts, even though the run has finished since (late).
func TestDeadlineFiresOnStart(t *testing.T) {
	e := setup(t)
	e.DAG("late", `
dag_id: late
deadline: {reference: queued_at, interval: 1s, notify: [ops]}
tasks: [{task_id: t, operator: bash, bash_command: "sleep 2"}]
`)
	e.Scheduler(nil) // no alert delivery in this one
	runID := e.Trigger("late", "")
	e.WaitRun("late", runID, time.Minute)
	if n, _ := e.Store.OutboxDepth(e.Ctx); n != 0 {
		t.Fatalf("outbox %d before any deliverer ran", n)
	}
	e.scheduler(e.deliverer(nil), func(c *scheduler.Config) { c.Workers = 1 })
	e.WaitFor("the deadline alert", time.Minute, func() bool { return len(e.hook.deliveries()) == 1 })
	time.Sleep(500 * time.Millisecond)
	wantKeys(t, keys(e.hook.deliveries()), " deadline 0")
}

// The receiver is down (connection refused) for a while, then answers 500
// for a while, then is up: every alert arrives, once, each attempt recorded.
func TestReceiverDownThenUp(t *testing.T) {
	e := setup(t)
	// Down: a port nobody listens on until the receiver comes up there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e.DAG("many", `
dag_id: many
default_args: {on_success_callback: [ops]}
tasks:
  - {task_id: a, operator: empty}
  - {task_id: b, operator: empty}
  - {task_id: c, operator: empty}
`)
	d := e.deliverer(nil)
	d.Senders["ops"] = &alerts.Webhook{URL: "http://" + addr, Secret: secret}
	e.scheduler(d, nil)
	var runs []string
	for i := 0; i < 3; i++ {
		runs = append(runs, e.Trigger("many", ""))
	}
	e.WaitRuns("many", runs, time.Minute)
	time.Sleep(downFor)
	e.hook.mode.Store(modeFail)
	up := httptest.NewUnstartedServer(http.HandlerFunc(e.hook.serve))
	if up.Listener, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	up.Start()
	t.Cleanup(up.Close)
	time.Sleep(2 * time.Second)
	e.hook.mode.Store(modeOK)
	e.settle(time.Minute)
	ds := e.hook.deliveries()
	if len(ds) != 9 {
		t.Fatalf("%d deliveries, want 9: %q", len(ds), keys(ds))
	}
	seen := map[string]bool{}
	for _, dl := range ds {
		if seen[dl.id] || !dl.sigOK {
			t.Errorf("delivery %s: duplicate %v, signature ok %v", dl.id, seen[dl.id], dl.sigOK)
		}
		seen[dl.id] = true
		atts, err := e.Store.AlertAttempts(e.Ctx, dl.id)
		if err != nil || len(atts) < 3 {
			t.Fatalf("attempts of %s: %+v %v; want refused, 500, …, 200", dl.id, atts, err)
		}
		first, last := atts[0], atts[len(atts)-1]
		if first.StatusCode != 0 || !strings.Contains(first.Error, "refused") || last.StatusCode != 200 || last.Error != "" {
			t.Errorf("attempts of %s: first %+v, last %+v", dl.id, first, last)
		}
		saw500 := false
		for _, a := range atts {
			saw500 = saw500 || a.StatusCode == 500
		}
		if !saw500 {
			t.Errorf("attempts of %s never met the 500s: %+v", dl.id, atts)
		}
	}
}

// downFor is how long the receiver stays down (the 30 s with
// ALERTS_TEST_FULL=1; the backoff is scaled down with it).
var downFor = func() time.Duration {
	if os.Getenv("ALERTS_TEST_FULL") != "" {
		return 30 * time.Second
	}
	return 5 * time.Second
}()

// Alerts whose receiver gives up for good are marked failed after
// give_up_after, with every attempt recorded.
func TestGiveUp(t *testing.T) {
	e := setup(t)
	e.hook.mode.Store(modeFail)
	e.DAG("one", "dag_id: one\ntasks: [{task_id: a, operator: empty, on_success_callback: [ops, nobody]}]\n")
	d := e.deliverer(nil)
	d.Policy.GiveUpAfter = 2 * time.Second
	var mu sync.Mutex
	results := map[string]int{}
	d.Sent = func(notifier, result string) { mu.Lock(); results[notifier+" "+result]++; mu.Unlock() }
	e.scheduler(d, nil)
	e.WaitRun("one", e.Trigger("one", ""), time.Minute)
	e.settle(time.Minute)
	as, err := e.Store.ListAlerts(e.Ctx, store.AlertFilter{State: "failed"})
	if err != nil || len(as) != 2 {
		t.Fatalf("failed alerts %+v %v; want 2", as, err)
	}
	mu.Lock()
	if results["ops failed"] != 1 || results["nobody failed"] != 1 || results["ops retry"] < 1 || results["ops sent"] != 0 {
		t.Errorf("results told to the metrics: %v", results)
	}
	mu.Unlock()
	for _, a := range as {
		atts, _ := e.Store.AlertAttempts(e.Ctx, a.ID)
		if len(atts) < 2 || len(atts) != a.Attempts {
			t.Errorf("alert %s: %d attempts recorded of %d", a.Notifier, len(atts), a.Attempts)
		}
		if a.Notifier == "nobody" && !strings.Contains(a.LastError, `notifier "nobody" is not declared`) {
			t.Errorf("unknown notifier's error %q", a.LastError)
		}
		if a.Notifier == "ops" && !strings.Contains(a.LastError, "HTTP 500") {
			t.Errorf("500's error %q", a.LastError)
		}
	}
}

// runChildScheduler is a scheduler process that delivers alerts to
// HOOK_URL, polling the outbox every ALERT_POLL.
func runChildScheduler(c *flowtest.Child) error {
	poll, err := time.ParseDuration(c.Env("ALERT_POLL"))
	if err != nil {
		return err
	}
	zombie, err := time.ParseDuration(c.Env("ZOMBIE_THRESHOLD"))
	if err != nil {
		return err
	}
	d := &alerts.Deliverer{Senders: map[string]alerts.Sender{"ops": &alerts.Webhook{URL: c.Env("HOOK_URL"), Secret: secret}},
		Policy: fastPolicy, BaseURL: "http://ui.test", Poll: poll}
	s := scheduler.New(c.Store, operators.NewRegistry(bash.New(), empty.New()), scheduler.Config{
		DagsFolder: c.Dir, Workers: 4, ZombieThreshold: zombie, Alerts: d,
		LoopInterval: 100 * time.Millisecond, SyncInterval: 100 * time.Millisecond, Logger: c.Logger,
	})
	c.Ready(s.ID())
	return s.Run(c.Ctx)
}

// A scheduler killed -9 after the state change and before it delivered
// (its outbox poll is an hour): another scheduler delivers the alert.
func TestKilledSchedulerAlertDeliveredByAnother(t *testing.T) {
	e := setup(t)
	e.DAG("crash", "dag_id: crash\ntasks: [{task_id: t, operator: bash, bash_command: 'exit 2', on_failure_callback: [ops]}]\n")
	p := e.StartChild("scheduler", "ALERT_POLL=1h", "ZOMBIE_THRESHOLD=30s", "HOOK_URL="+e.hook.srv.URL)
	runID := e.Trigger("crash", "")
	e.WaitFor("the task to fail", time.Minute, func() bool { return e.state("crash", runID, "t") == runstate.Failed })
	p.Kill()
	if n, _ := e.Store.OutboxDepth(e.Ctx); n != 1 || len(e.hook.deliveries()) != 0 {
		t.Fatalf("before the restart: outbox %d, deliveries %d; want 1 and 0", n, len(e.hook.deliveries()))
	}
	e.scheduler(e.deliverer(nil), nil)
	e.settle(time.Minute)
	ds := e.hook.deliveries()
	wantKeys(t, keys(ds), "t failure 1")
	if len(ds) == 1 && !ds[0].sigOK {
		t.Error("bad signature")
	}
}

// A zombie: its scheduler is killed -9 while the task runs; another
// scheduler fails it as a zombie, and its failure callback fires.
func TestZombieFiresFailure(t *testing.T) {
	e := setup(t)
	e.DAG("zombie", "dag_id: zombie\ntasks: [{task_id: t, operator: bash, bash_command: 'sleep 120', on_failure_callback: [ops]}]\n")
	p := e.StartChild("scheduler", "ALERT_POLL=1h", "ZOMBIE_THRESHOLD=2s", "HOOK_URL="+e.hook.srv.URL)
	runID := e.Trigger("zombie", "")
	e.WaitFor("the task to run", time.Minute, func() bool { return e.state("zombie", runID, "t") == runstate.Running })
	p.Kill()
	e.scheduler(e.deliverer(nil), func(c *scheduler.Config) { c.ZombieThreshold = 2 * time.Second })
	e.WaitRun("zombie", runID, time.Minute)
	e.settle(time.Minute)
	ds := e.hook.deliveries()
	wantKeys(t, keys(ds), "t failure 1")
	if len(ds) == 1 && (!ds[0].sigOK || ds[0].msg.State != "failed") {
		t.Errorf("zombie's alert %+v", ds[0])
	}
}

// A receiver that hangs does not slow scheduling: the task-to-task latency
// of a 10-task chain, every task alerting twice, with a hanging receiver is
// no worse (within noise) than with one that answers at once; a chain with
// no callbacks is the baseline.
func TestHangingReceiverDoesNotSlowScheduling(t *testing.T) {
	e := setup(t)
	chain := func(id, defaults string) string {
		var sb strings.Builder
		fmt.Fprintf(&sb, "dag_id: %s\ndefault_args: {%s}\ntasks:\n", id, defaults)
		for i := 0; i < 10; i++ {
			up := ""
			if i > 0 {
				up = fmt.Sprintf(", upstream: [t%d]", i-1)
			}
			fmt.Fprintf(&sb, "  - {task_id: t%d, operator: empty%s}\n", i, up)
		}
		return sb.String()
	}
	e.DAG("chain", chain("chain", "on_success_callback: [ops], on_execute_callback: [ops]"))
	e.DAG("plain", chain("plain", ""))
	d := e.deliverer(nil)
	d.Policy.Timeout = 30 * time.Second
	e.scheduler(d, nil)
	measure := func(dagID string) time.Duration {
		var total time.Duration
		const runs = 5
		for i := 0; i < runs; i++ {
			runID := e.Trigger(dagID, "")
			e.WaitRun(dagID, runID, time.Minute)
			total += chainGap(t, e, dagID, runID)
		}
		return total / runs
	}
	e.WaitRun("plain", e.Trigger("plain", ""), time.Minute) // warm-up: DAG cache, connections
	e.WaitRun("chain", e.Trigger("chain", ""), time.Minute)
	e.settle(time.Minute)
	base := measure("plain")
	e.hook.mode.Store(modeOK)
	fast := measure("chain")
	e.hook.mode.Store(modeHang)
	slow := measure("chain")
	t.Logf("mean task-to-task latency: no callbacks %s, receiver answering %s, receiver hanging %s", base, fast, slow)
	if slow > 2*fast+50*time.Millisecond {
		t.Errorf("a hanging receiver slowed scheduling: %s vs %s", slow, fast)
	}
	if n, _ := e.Store.OutboxDepth(e.Ctx); n == 0 {
		t.Error("the hanging receiver's alerts are not pending: the measurement measured nothing")
	}
}

// chainGap is the mean time from one task's end to the next one's start.
func chainGap(t *testing.T, e *env, dagID, runID string) time.Duration {
	tis := e.TIs(dagID, runID)
	byID := map[string]store.TaskInstance{}
	for _, ti := range tis {
		byID[ti.TaskID] = ti
	}
	var sum time.Duration
	for i := 1; i < 10; i++ {
		prev, next := byID[fmt.Sprintf("t%d", i-1)], byID[fmt.Sprintf("t%d", i)]
		if prev.EndedAt == nil || next.StartedAt == nil {
			t.Fatalf("task times missing: %+v %+v", prev, next)
		}
		sum += next.StartedAt.Sub(*prev.EndedAt)
	}
	return sum / 9
}

// smtpServer is a real SMTP server (emersion/go-smtp) with STARTTLS and
// PLAIN auth, keeping what it receives.
type smtpServer struct {
	addr  string
	roots *x509.CertPool
	mu    sync.Mutex
	got   []*mailMsg
}

type mailMsg struct {
	tls      bool
	user     string
	from     string
	to       []string
	data     []byte
	subject  string
	delivery string
}

func newSMTPServer(t *testing.T) *smtpServer { return newSMTPServerMode(t, "starttls") }

// newSMTPServerMode is an SMTP server with STARTTLS (starttls), TLS from
// the first byte (tls) or no TLS at all (none).
func newSMTPServerMode(t *testing.T, mode string) *smtpServer {
	// httptest's certificate (for 127.0.0.1) serves the SMTP server too.
	certSrv := httptest.NewTLSServer(http.NotFoundHandler())
	certSrv.Close()
	s := &smtpServer{roots: x509.NewCertPool()}
	s.roots.AddCert(certSrv.Certificate())
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c, msg: &mailMsg{}}, nil
	}))
	srv.Domain = "localhost"
	tlsCfg := &tls.Config{Certificates: certSrv.TLS.Certificates}
	if mode == "starttls" {
		srv.TLSConfig = tlsCfg
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if mode == "tls" {
		l = tls.NewListener(l, tlsCfg)
	}
	s.addr = l.Addr().String()
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *smtpServer) sender() *alerts.Email {
	host, port, _ := net.SplitHostPort(s.addr)
	p, _ := strconv.Atoi(port)
	return &alerts.Email{Host: host, Port: p, TLS: "starttls", Username: "alerts", Password: config.Secret("pw"),
		From: "podflow <alerts@podflow.test>", To: []string{"oncall@podflow.test"}, RootCAs: s.roots}
}

func (s *smtpServer) messages() []*mailMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*mailMsg(nil), s.got...)
}

type smtpSession struct {
	srv  *smtpServer
	conn *smtp.Conn
	msg  *mailMsg
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pw string) error {
		if user != "alerts" || pw != "pw" {
			return fmt.Errorf("bad credentials")
		}
		s.msg.user = user
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	_, s.msg.tls = s.conn.TLSConnectionState()
	s.msg.from = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = data
	if m, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		s.msg.subject, _ = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		s.msg.delivery = m.Header.Get("X-Podflow-Delivery")
	}
	s.srv.mu.Lock()
	s.srv.got = append(s.srv.got, s.msg)
	s.srv.mu.Unlock()
	s.msg = &mailMsg{user: s.msg.user, tls: s.msg.tls}
	return nil
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

// parts returns the text/plain and text/html parts, decoded.
func (m *mailMsg) parts() (text, html string) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		return "", ""
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return "", ""
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err != nil {
			return text, html
		}
		b, _ := io.ReadAll(p)
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			text = string(b)
		} else {
			html = string(b)
		}
	}
}
