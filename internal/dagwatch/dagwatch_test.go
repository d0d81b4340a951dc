package dagwatch_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/dagwatch"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/empty"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// A wait on a task of a run that does not exist yet ends when the task
// reaches a final state, woken by the database's notification (the hub's
// fallback re-check is an hour here, so only the NOTIFY can end it).
func TestWaitIsWokenByTheDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	n := notifier.New(cfg, nil, store.ChannelStateChanged)
	hub, err := dagwatch.New(st, n, nil)
	if err != nil {
		t.Fatal(err)
	}
	hub.Fallback = time.Hour
	go n.Run(ctx)
	go func() { _ = hub.Run(ctx) }()

	logical := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	target := dagwatch.Target{DagID: "up", LogicalDate: logical, TaskID: "a"}
	if states, err := dagwatch.States(ctx, st, []dagwatch.Target{target}); err != nil || states[0] != "" {
		t.Fatalf("States of a missing target = %v, %v; want \"\"", states, err)
	}
	got := make(chan string, 1)
	go func() {
		s, err := hub.Wait(ctx, target, func(s string) bool { return s == "success" || s == "failed" })
		if err != nil {
			t.Error(err)
		}
		got <- s
	}()
	p := dag.NewParser(operators.NewRegistry(empty.New()).Schemas())
	d, errs := p.ParseBytes("up.yaml", []byte("dag_id: up\ntasks:\n  - {task_id: a, operator: empty}\n"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	runID, err := scheduler.TriggerRun(ctx, st, d, logical, nil)
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.Run(ctx, "up", runID)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.InsertTaskInstances(ctx, run, []store.TaskSpec{{TaskID: "a"}}); err != nil {
		t.Fatal(err)
	}
	ti, err := st.TaskInstance(ctx, run.PK, "a")
	if err != nil {
		t.Fatal(err)
	}
	for hub.Waiting() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	marked := time.Now()
	if _, err := st.MarkTaskInstance(ctx, ti.ID, "failed"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "failed" {
			t.Errorf("wait ended with %q, want failed", s)
		}
		if lag := time.Since(marked); lag > time.Second {
			t.Errorf("wait ended %s after the change, want well under a second", lag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the wait did not end: no notification reached the hub")
	}
	byRun := dagwatch.Target{DagID: "up", RunID: runID}
	if states, err := dagwatch.States(ctx, st, []dagwatch.Target{byRun, target}); err != nil || states[0] != "queued" || states[1] != "failed" {
		t.Errorf("States = %v, %v; want [queued failed]", states, err)
	}
}
