package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators/builtin"
)

// --wait learns that a run ended from the notification sent in the
// transaction that ends it: with a fallback poll of a minute, the wait
// still returns within moments of the run's end.
func TestWaitReturnsOnRunEndNotification(t *testing.T) {
	b := flowtest.New(t, builtin.Registry(builtin.Deps{}))
	b.DAG("w", "dag_id: w\ntasks:\n  - {task_id: a, operator: bash, bash_command: 'true'}\n")
	runID := b.Trigger("w", "") // no scheduler: the test ends the run itself
	run := b.Run("w", runID)
	if _, err := b.Store.StartRun(b.Ctx, run.PK); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	app := &App{dbURL: b.URL}
	st, err := app.StoreOneConn(ctx) // as trigger: LISTEN, queries and wait on one connection
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ends, err := listenRunEnds(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	const fallback = time.Minute
	type result struct {
		state string
		err   error
		at    time.Time
	}
	done := make(chan result, 1)
	go func() {
		state, err := waitForRun(ctx, st, ends, "w", runID, io.Discard, fallback)
		done <- result{state, err, time.Now()}
	}()
	// The run ends once the waiter has read it running (its first read
	// takes milliseconds; half a second leaves room on a loaded machine).
	time.Sleep(500 * time.Millisecond)
	ended := time.Now()
	if err := b.Store.InTx(ctx, func(q store.Q) error {
		_, err := q.FinishRun(ctx, run.PK, runstate.RunSuccess)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.state != runstate.RunSuccess {
			t.Fatalf("wait = %q, %v; want %s", r.state, r.err, runstate.RunSuccess)
		}
		if took := r.at.Sub(ended); took > 5*time.Second {
			t.Errorf("wait returned %s after the run ended; the notification should end it at once (fallback %s)", took, fallback)
		}
	case <-ctx.Done():
		t.Fatalf("wait did not return within 30s of the run's end (fallback poll %s): the notification was not seen", fallback)
	}
}
