package scheduler

import (
	"context"
	"testing"
	"time"
)

func TestStartGateHoldsClaimsUntilReleasedOrMax(t *testing.T) {
	t.Parallel()
	var g startGate
	ctx := context.Background()
	t0 := time.Now()
	g.wait(ctx, time.Hour) // open: no wait
	if g.held() || time.Since(t0) > time.Second {
		t.Fatal("an open gate held a claim")
	}

	release := g.hold()
	if !g.held() {
		t.Fatal("held gate reports open")
	}
	done := make(chan struct{})
	go func() { g.wait(ctx, time.Hour); close(done) }()
	select {
	case <-done:
		t.Fatal("wait returned while the gate was held")
	case <-time.After(100 * time.Millisecond):
	}
	release()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return when the gate was released")
	}
	if g.held() {
		t.Fatal("released gate reports held")
	}

	// A pass that outlasts max holds a claim for max only.
	defer g.hold()()
	t0 = time.Now()
	g.wait(ctx, 50*time.Millisecond)
	if d := time.Since(t0); d < 50*time.Millisecond || d > 5*time.Second {
		t.Fatalf("waited %s, want ~50ms", d)
	}
}
