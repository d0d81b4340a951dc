package heartbeat_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/heartbeat"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestInterval(t *testing.T) {
	for _, tc := range []struct{ threshold, want time.Duration }{
		{30 * time.Second, 5 * time.Second},
		{6 * time.Second, time.Second},
		{60 * time.Millisecond, 50 * time.Millisecond},
		{time.Hour, 5 * time.Second},
	} {
		if got := heartbeat.Interval(tc.threshold); got != tc.want {
			t.Errorf("Interval(%s) = %s; want %s", tc.threshold, got, tc.want)
		}
	}
}

// Beat writes the row, Run keeps it fresh and calls back after each beat,
// Remove deletes it.
func TestBeatRunRemove(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, pgtest.NewMigratedDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := heartbeat.New(st, "proc-1", "scheduler", 300*time.Millisecond, 0, nil) // beats every 50 ms
	if _, ok, err := st.HeartbeatAge(ctx, "proc-1"); err != nil || ok {
		t.Fatalf("before Beat: row present %v, %v", ok, err)
	}
	if err := h.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.HeartbeatAge(ctx, "proc-1"); err != nil || !ok {
		t.Fatalf("after Beat: row present %v, %v", ok, err)
	}

	runCtx, stop := context.WithCancel(ctx)
	beats := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(runCtx, func(context.Context) { beats <- struct{}{} })
	}()
	for range 3 {
		select {
		case <-beats:
		case <-time.After(5 * time.Second):
			t.Fatal("no callback after a beat within 5 s")
		}
	}
	age, ok, err := st.HeartbeatAge(ctx, "proc-1")
	if err != nil || !ok || age > 2*time.Second {
		t.Errorf("while running: age %s, present %v, %v; want fresh", age, ok, err)
	}
	stop()
	<-done

	if err := h.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.HeartbeatAge(ctx, "proc-1"); err != nil || ok {
		t.Errorf("after Remove: row present %v, %v", ok, err)
	}
}
