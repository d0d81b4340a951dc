// Package flowtest is the harness of podflow's system tests: a fresh
// database, a DAGs folder, schedulers and triggerers of this process, and
// waits that wake on the database's notifications instead of sleeping.
//
//	b := flowtest.New(t)
//	b.DAG("etl", yaml)
//	b.Scheduler(nil)
//	state := b.WaitRun("etl", b.Trigger("etl", `{"n": 1}`), time.Minute)
//
// Log is the recording task log of operator tests.
package flowtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
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
}

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
	n := notifier.New(cfg, nil, store.ChannelTaskFinished)
	finished, err := n.Subscribe(store.ChannelTaskFinished)
	if err != nil {
		t.Fatal(err)
	}
	nctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); n.Run(nctx) }()
	t.Cleanup(func() { stop(); <-done })
	return &Bundle{T: t, Ctx: ctx, Store: st, URL: url, Dir: t.TempDir(), Ops: ops,
		Parser: dag.NewParser(ops.Schemas()), finished: finished}
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
// that mod may change; it stops at cleanup.
func (b *Bundle) Scheduler(mod func(*scheduler.Config)) *scheduler.Scheduler {
	b.T.Helper()
	cfg := scheduler.Config{
		DagsFolder:   b.Dir,
		Workers:      8,
		SyncInterval: 50 * time.Millisecond,
		LoopInterval: 100 * time.Millisecond,
		Logger:       Logger(),
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
