package scheduler

import (
	"context"
	"sync"
	"time"
)

// startGate gives starting runs priority over claiming tasks during a
// storm: while a start pass has more runs than one batch, the claimer and
// the completer's fast path wait (at most stormHold), so the CPU goes to
// starting every due run rather than to the first runs' tasks. A run that
// starts late is late for all its tasks; a task that starts a second later
// is late only for itself.
type startGate struct {
	mu       sync.Mutex
	released chan struct{} // while a pass holds the gate: closed when it ends; nil otherwise
}

// stormHold bounds how long one start pass holds claiming back.
const stormHold = 3 * time.Second

// hold closes the gate until the returned release is called.
func (g *startGate) hold() (release func()) {
	g.mu.Lock()
	ch := make(chan struct{})
	g.released = ch
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		if g.released == ch {
			g.released = nil
		}
		g.mu.Unlock()
		close(ch)
	}
}

// held reports whether a start pass holds the gate.
func (g *startGate) held() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.released != nil
}

// wait waits until the gate is open, at most max (or ctx's end).
func (g *startGate) wait(ctx context.Context, max time.Duration) {
	g.mu.Lock()
	ch := g.released
	g.mu.Unlock()
	if ch == nil {
		return
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	}
}
