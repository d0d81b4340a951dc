// Package flowtest is the harness of podflow's system tests: a fresh
// database, a DAGs folder, schedulers and triggerers of this process, and
// waits that wake on the database's notifications instead of sleeping.
//
//	b := flowtest.New(t, ops)
//	b.DAG("etl", yaml)
//	b.Scheduler(nil)
//	b.Triggerer(nil)
//	state := b.WaitRun("etl", b.Trigger("etl", `{"n": 1}`), time.Minute)
//
// Daemons can also run as child processes of the test binary (Main,
// StartChild), to be killed with -9. Operator tests get a recording task
// log (Log) and a task context builder (TaskContext).
package flowtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
)

// Bundle is one test's database, DAGs folder and daemons.
type Bundle struct {
	T      *testing.T
	Ctx    context.Context
	Store  *store.Store
	URL    string
	Dir    string // the DAGs folder
	Ops    *operators.Registry
	Parser *dag.Parser

	finished *notifier.Subscription
	changed  chan struct{} // a notification on any channel: wakes WaitFor
}

// channels are the notifications a Bundle listens to.
var channels = []string{store.ChannelTaskQueued, store.ChannelTaskFinished, store.ChannelSchedulerWake, store.ChannelTriggerCreated}

// New gives the test a fresh database and DAGs folder; ops are the
// operators its schedulers run. Everything stops at the test's cleanup.
func New(t *testing.T, ops *operators.Registry) *Bundle {
	t.Helper()
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	n := notifier.New(cfg, nil, channels...)
	finished, err := n.Subscribe(store.ChannelTaskFinished)
	if err != nil {
		t.Fatal(err)
	}
	nctx, stop := context.WithCancel(ctx)
	var running sync.WaitGroup
	changed := make(chan struct{}, 1)
	for _, ch := range channels {
		sub, err := n.Subscribe(ch)
		if err != nil {
			t.Fatal(err)
		}
		running.Go(func() {
			for {
				select {
				case <-nctx.Done():
					return
				case <-sub.C:
					select {
					case changed <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	running.Go(func() { n.Run(nctx) })
	t.Cleanup(func() { stop(); running.Wait() })
	return &Bundle{T: t, Ctx: ctx, Store: st, URL: url, Dir: t.TempDir(), Ops: ops,
		Parser: dag.NewParser(ops.Schemas()), finished: finished, changed: changed}
}

// Logger is the daemons' logger: quiet unless TEST_LOG_LEVEL says.
func Logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.LevelFromString(os.Getenv("TEST_LOG_LEVEL")), Output: os.Stderr})
}

// DAG writes a DAG file into the folder.
func (b *Bundle) DAG(name, yaml string) {
	b.T.Helper()
	if err := os.WriteFile(filepath.Join(b.Dir, name+".yaml"), []byte(yaml), 0o644); err != nil {
		b.T.Fatal(err)
	}
}

// Scheduler starts a scheduler on the folder, with fast test intervals
// that mod may change; it stops at cleanup. Its shutdown grace is short:
// at cleanup the test is over, and a task still running then (a long
// sleep a test stopped waiting for) need not hold the test for the 30 s
// default.
func (b *Bundle) Scheduler(mod func(*scheduler.Config)) *scheduler.Scheduler {
	b.T.Helper()
	cfg := scheduler.Config{
		DagsFolder:    b.Dir,
		Workers:       8,
		SyncInterval:  50 * time.Millisecond,
		LoopInterval:  100 * time.Millisecond,
		ShutdownGrace: time.Second,
		Logger:        Logger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	s := scheduler.New(b.Store, b.Ops, cfg)
	b.Go("scheduler", s.Run)
	return s
}

// Go runs a daemon's Run until cleanup, and fails the test if it does not
// stop within a minute or returns an error.
func (b *Bundle) Go(name string, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	b.T.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				b.T.Errorf("%s: %v", name, err)
			}
		case <-time.After(time.Minute):
			b.T.Errorf("%s did not stop", name)
		}
	})
}

// LoadDAG parses the folder's current version of a DAG.
func (b *Bundle) LoadDAG(dagID string) *dag.DAG {
	b.T.Helper()
	folder := b.Parser.LoadFolder(b.Dir)
	d := folder.DAG(dagID)
	if d == nil {
		b.T.Fatalf("no DAG %s in folder: %v", dagID, folder.AllErrors())
	}
	return d
}

// Trigger creates a manual run of the folder's current version of a DAG,
// with conf ("" for none), and returns its run id.
func (b *Bundle) Trigger(dagID string, conf string) string {
	b.T.Helper()
	var c []byte
	if conf != "" {
		c = []byte(conf)
	}
	runID, err := scheduler.TriggerRun(b.Ctx, b.Store, b.LoadDAG(dagID), time.Now().UTC(), c)
	if err != nil {
		b.T.Fatal(err)
	}
	return runID
}

// WaitRun waits for a run to finish and returns its state. It wakes on
// the run-finished notification, polling every second as a fallback.
func (b *Bundle) WaitRun(dagID, runID string, timeout time.Duration) string {
	b.T.Helper()
	deadline := time.After(timeout)
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		run, err := b.Store.Run(b.Ctx, dagID, runID)
		if err == nil && (run.State == runstate.RunSuccess || run.State == runstate.RunFailed) {
			return run.State
		}
		select {
		case <-b.finished.C:
		case <-poll.C:
		case <-deadline:
			b.T.Fatalf("run %s of %s did not finish in %s; tasks: %s", runID, dagID, timeout, b.States(dagID, runID))
			return ""
		}
	}
}

// WaitFor waits until cond holds, checking it again on every notification
// of the database (a task queued or finished, a run woken, a trigger
// created) and, for state no notification reports (a daemon's counters, a
// pod), every 100 ms.
func (b *Bundle) WaitFor(what string, timeout time.Duration, cond func() bool) {
	b.T.Helper()
	waitFor(b.T, what, timeout, b.changed, cond)
}

// Eventually waits until cond holds, checking it every 100 ms: for tests
// with no Bundle, waiting on what no database notification reports (a
// process coming up, a file, an environment variable).
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	waitFor(t, what, timeout, nil, cond)
}

// waitFor checks cond on every wake-up (none when wake is nil) and every
// 100 ms until it holds, and fails the test after timeout.
func waitFor(t testing.TB, what string, timeout time.Duration, wake <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.After(timeout)
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for !cond() {
		select {
		case <-wake:
		case <-poll.C:
		case <-deadline:
			t.Fatalf("%s: not within %s", what, timeout)
		}
	}
}

// WaitRuns waits until all these runs of a DAG have finished and returns how
// many ended in each state.
func (b *Bundle) WaitRuns(dagID string, runIDs []string, timeout time.Duration) map[string]int {
	b.T.Helper()
	var counts map[string]int
	b.WaitFor("runs of "+dagID+" finish", timeout, func() bool {
		runs, err := b.Store.Runs(b.Ctx, dagID, len(runIDs)+10)
		if err != nil {
			b.T.Fatal(err)
		}
		counts = map[string]int{}
		for _, r := range runs {
			counts[r.State]++
		}
		return counts[runstate.RunSuccess]+counts[runstate.RunFailed] == len(runIDs)
	})
	return counts
}

// Run is a run's row.
func (b *Bundle) Run(dagID, runID string) store.Run {
	b.T.Helper()
	run, err := b.Store.Run(b.Ctx, dagID, runID)
	if err != nil {
		b.T.Fatal(err)
	}
	return run
}

// States returns task_id → state of a run.
func (b *Bundle) States(dagID, runID string) map[string]string {
	b.T.Helper()
	tis, err := b.Store.TaskInstances(b.Ctx, b.Run(dagID, runID).PK)
	if err != nil {
		b.T.Fatal(err)
	}
	m := map[string]string{}
	for _, ti := range tis {
		m[ti.TaskID] = ti.State
	}
	return m
}

// TI returns a task instance of a run.
func (b *Bundle) TI(dagID, runID, taskID string) store.TaskInstance {
	b.T.Helper()
	ti, err := b.Store.TaskInstance(b.Ctx, b.Run(dagID, runID).PK, taskID)
	if err != nil {
		b.T.Fatal(err)
	}
	return ti
}

// TIs returns a run's task instances.
func (b *Bundle) TIs(dagID, runID string) []store.TaskInstance {
	b.T.Helper()
	tis, err := b.Store.TaskInstances(b.Ctx, b.Run(dagID, runID).PK)
	if err != nil {
		b.T.Fatal(err)
	}
	return tis
}

// History is a task instance's states in order, comma-separated.
func (b *Bundle) History(ti store.TaskInstance) string {
	b.T.Helper()
	h, err := b.Store.StateHistory(b.Ctx, ti.ID)
	if err != nil {
		b.T.Fatal(err)
	}
	s := make([]string, len(h))
	for i, x := range h {
		s[i] = x.State
	}
	return strings.Join(s, ",")
}

// TryLog is one try's log, each line as "[source] line".
func (b *Bundle) TryLog(ti store.TaskInstance, try int) string {
	b.T.Helper()
	lines, err := b.Store.Logs(b.Ctx, ti.ID, try, 0)
	if err != nil {
		b.T.Fatal(err)
	}
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString("[" + l.Source + "] " + l.Line + "\n")
	}
	return sb.String()
}

// Log returns a task's log, every try in order.
func (b *Bundle) Log(dagID, runID, taskID string) string {
	b.T.Helper()
	ti := b.TI(dagID, runID, taskID)
	var sb strings.Builder
	for try := 1; try <= ti.TryNumber; try++ {
		lines, err := b.Store.Logs(b.Ctx, ti.ID, try, 0)
		if err != nil {
			b.T.Fatal(err)
		}
		for _, l := range lines {
			sb.WriteString(l.Line + "\n")
		}
	}
	return sb.String()
}
