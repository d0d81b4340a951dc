package api

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/store"
)

// Watcher follows the runs that wait streams and log follows watch, for the
// whole server: one LISTEN connection (run finished, scheduler wake-ups) and
// one statement per wake-up for every watched run, fanned out to the
// watchers, plus a periodic recheck as a safety net (a run that starts sends
// no notification). A client holds no database connection while it waits.
type Watcher struct {
	st       *store.Store
	log      hclog.Logger
	interval time.Duration

	mu    sync.Mutex
	runs  map[int64]map[*RunWatch]struct{}
	ticks map[*Tick]struct{}
	kick  chan struct{}
}

// RecheckInterval is how often watched runs are read without a notification.
const RecheckInterval = time.Second

// NewWatcher makes a watcher; Run runs it.
func NewWatcher(st *store.Store, log hclog.Logger) *Watcher {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Watcher{st: st, log: log.Named("watcher"), interval: RecheckInterval,
		runs: map[int64]map[*RunWatch]struct{}{}, ticks: map[*Tick]struct{}{}, kick: make(chan struct{}, 1)}
}

// RunWatch receives a run's state whenever the watcher reads it: C holds
// the latest (older ones are dropped). "" means the run is gone.
type RunWatch struct {
	C  chan string
	w  *Watcher
	pk int64
}

// WatchRun starts watching a run; Close stops.
func (w *Watcher) WatchRun(pk int64) *RunWatch {
	rw := &RunWatch{C: make(chan string, 1), w: w, pk: pk}
	w.mu.Lock()
	if w.runs[pk] == nil {
		w.runs[pk] = map[*RunWatch]struct{}{}
	}
	w.runs[pk][rw] = struct{}{}
	w.mu.Unlock()
	return rw
}

// Close stops the watch.
func (rw *RunWatch) Close() {
	rw.w.mu.Lock()
	defer rw.w.mu.Unlock()
	delete(rw.w.runs[rw.pk], rw)
	if len(rw.w.runs[rw.pk]) == 0 {
		delete(rw.w.runs, rw.pk)
	}
}

// Tick wakes a log follow whenever the watcher wakes (a notification or the
// recheck), so it reads its next lines at that pace.
type Tick struct {
	C chan struct{}
	w *Watcher
}

// Ticks starts a tick subscription; Close stops it.
func (w *Watcher) Ticks() *Tick {
	t := &Tick{C: make(chan struct{}, 1), w: w}
	w.mu.Lock()
	w.ticks[t] = struct{}{}
	w.mu.Unlock()
	return t
}

// Close stops the ticks.
func (t *Tick) Close() {
	t.w.mu.Lock()
	delete(t.w.ticks, t)
	t.w.mu.Unlock()
}

// Watching counts the runs watched (for tests and metrics).
func (w *Watcher) Watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, ws := range w.runs {
		n += len(ws)
	}
	return n
}

// Run listens and rechecks until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	n := notifier.New(w.st.Pool.Config().ConnConfig, w.log, store.ChannelTaskFinished, store.ChannelSchedulerWake)
	finished, err := n.Subscribe(store.ChannelTaskFinished)
	if err != nil {
		w.log.Error("subscribe", "error", err)
		return
	}
	wake, err := n.Subscribe(store.ChannelSchedulerWake)
	if err != nil {
		w.log.Error("subscribe", "error", err)
		return
	}
	go n.Run(ctx)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-finished.C:
		case <-wake.C:
		case <-t.C:
		case <-w.kick:
		}
		w.poll(ctx)
	}
}

// Kick makes the watcher read now (a new watch wants its first state soon).
func (w *Watcher) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Watcher) poll(ctx context.Context) {
	w.mu.Lock()
	pks := make([]int64, 0, len(w.runs))
	for pk := range w.runs {
		pks = append(pks, pk)
	}
	for t := range w.ticks {
		select {
		case t.C <- struct{}{}:
		default:
		}
	}
	w.mu.Unlock()
	if len(pks) == 0 {
		return
	}
	states, err := w.st.RunStates(ctx, pks)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("read watched runs", "error", err)
		}
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for pk, ws := range w.runs {
		s := states[pk]
		for rw := range ws {
			select {
			case <-rw.C: // drop the stale state
			default:
			}
			rw.C <- s
		}
	}
}
