// Package heartbeat keeps a process's row in the heartbeats table fresh,
// for the scheduler and the triggerer alike. Others read the row's age: a
// scheduler silent past the zombie threshold has its running tasks failed
// or retried, a triggerer silent past it loses its triggers, and /healthz
// fails.
//
//	Beat (at start) ─▶ Run: every Interval(threshold): Beat, then after(ctx) ─▶ Remove (at stop)
package heartbeat

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/internal/store"
)

// Heartbeat is one process's heartbeat row.
type Heartbeat struct {
	store    *store.Store
	id, kind string
	interval time.Duration
	log      hclog.Logger
}

// Interval is how often a process beats so that it stays well within
// threshold: a sixth of it, between 50 ms and 5 s.
func Interval(threshold time.Duration) time.Duration {
	return min(max(threshold/6, 50*time.Millisecond), 5*time.Second)
}

// New returns the heartbeat of process id, of a kind ("scheduler",
// "triggerer"), beating every interval, or at Interval(threshold) when
// interval is 0. logger may be nil.
func New(st *store.Store, id, kind string, threshold, interval time.Duration, logger hclog.Logger) *Heartbeat {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if interval <= 0 {
		interval = Interval(threshold)
	}
	return &Heartbeat{store: st, id: id, kind: kind, interval: interval, log: logger}
}

// Beat upserts the row now.
func (h *Heartbeat) Beat(ctx context.Context) error {
	host, _ := os.Hostname()
	if err := h.store.Heartbeat(ctx, h.id, h.kind, host, os.Getpid()); err != nil {
		return fmt.Errorf("heartbeat of %s: %w", h.id, err)
	}
	return nil
}

// Run beats every interval until ctx ends, calling after (if not nil) after
// each beat, failed or not: the process's own check of what it still owns.
func (h *Heartbeat) Run(ctx context.Context, after func(context.Context)) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := h.Beat(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("heartbeat failed", "error", err)
		}
		if after != nil {
			after(ctx)
		}
	}
}

// Remove deletes the row, so that nobody waits for the process's threshold
// to pass after a clean stop.
func (h *Heartbeat) Remove(ctx context.Context) error {
	if err := h.store.RemoveHeartbeat(ctx, h.id); err != nil {
		return fmt.Errorf("remove heartbeat of %s: %w", h.id, err)
	}
	return nil
}
