package triggerer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/internal/heartbeat"
	"github.com/podflow/podflow/internal/metrics"
	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
)

// Config tunes a triggerer.
type Config struct {
	Capacity           int           // triggers run at once (default 1000)
	HeartbeatThreshold time.Duration // a triggerer silent this long loses its triggers (default 30s)
	PollInterval       time.Duration // claim fallback when no NOTIFY arrives (default 1s)
	// HeartbeatInterval is how often it beats and then stops the triggers
	// it no longer owns (default a sixth of HeartbeatThreshold, at most 5 s).
	HeartbeatInterval time.Duration
	Logger            hclog.Logger
	Metrics           *metrics.Metrics // optional
	// Notifier is the process's LISTEN connection; it must listen on
	// store.ChannelTriggerCreated. When nil, the triggerer runs its own.
	Notifier *notifier.Notifier
}

// Triggerer is one triggerer process.
type Triggerer struct {
	cfg   Config
	store *store.Store
	kinds map[string]operators.Trigger
	log   hclog.Logger
	id    string
	beat  *heartbeat.Heartbeat

	mu      sync.Mutex
	running map[int64]*runningTrigger
	wg      sync.WaitGroup
	firing  firing
}

type runningTrigger struct {
	cancel context.CancelCauseFunc
	kind   string
	args   json.RawMessage
}

var (
	errReleased  = errors.New("triggerer shutting down")
	errCancelled = errors.New("trigger removed (task cleared or killed)")
	// errTakenOver stops a trigger another triggerer now runs (this one
	// missed heartbeats): its pod or timer is theirs now, so nothing is
	// cleaned up.
	errTakenOver = errors.New("trigger taken over by another triggerer")
)

// New returns a triggerer that runs the given trigger kinds (by kind; an
// operator registry's Triggers) and no other.
func New(st *store.Store, kinds map[string]operators.Trigger, cfg Config) *Triggerer {
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1000
	}
	if cfg.HeartbeatThreshold <= 0 {
		cfg.HeartbeatThreshold = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := fmt.Sprintf("triggerer-%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	return &Triggerer{
		cfg: cfg, store: st, kinds: kinds, log: cfg.Logger, id: id,
		beat:    heartbeat.New(st, id, "triggerer", cfg.HeartbeatThreshold, cfg.HeartbeatInterval, cfg.Logger),
		running: map[int64]*runningTrigger{},
	}
}

// ID is this triggerer's instance id.
func (t *Triggerer) ID() string { return t.id }

// Running is how many triggers this triggerer runs now.
func (t *Triggerer) Running() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.running)
}

// Capacity is the most triggers it runs at once.
func (t *Triggerer) Capacity() int { return t.cfg.Capacity }

// Run runs until ctx ends, then releases its triggers so another triggerer
// takes them at once.
func (t *Triggerer) Run(ctx context.Context) error {
	n, ownNotifier := t.cfg.Notifier, t.cfg.Notifier == nil
	if ownNotifier {
		n = notifier.New(t.store.Pool.Config().ConnConfig, t.log, store.ChannelTriggerCreated)
	}
	// Triggers created, or released by a stopping triggerer, wake the claim loop.
	created, err := n.Subscribe(store.ChannelTriggerCreated)
	if err != nil {
		return fmt.Errorf("triggerer: %w", err)
	}
	defer created.Close()
	if err := t.beat.Beat(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	t.log.Info("triggerer started", "id", t.id, "capacity", t.cfg.Capacity)
	var bg sync.WaitGroup
	if ownNotifier {
		bg.Add(1)
		go func() { defer bg.Done(); n.Run(ctx) }()
	}
	bg.Add(1)
	// After each beat, stop triggers whose rows are gone or were taken over.
	go func() { defer bg.Done(); t.beat.Run(ctx, t.cancelRemoved) }()
	t.claimLoop(ctx, created.C)
	bg.Wait()

	t.mu.Lock()
	for _, r := range t.running {
		r.cancel(errReleased)
	}
	t.mu.Unlock()
	t.wg.Wait()
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := t.store.InTx(cleanup, func(q store.Q) error { return q.ReleaseTriggers(cleanup, t.id) }); err != nil {
		t.log.Error("release triggers", "error", err)
	}
	if err := t.beat.Remove(cleanup); err != nil {
		t.log.Warn("remove heartbeat", "error", err)
	}
	t.log.Info("triggerer stopped")
	return nil
}

// cancelRemoved stops triggers whose rows are gone (the task was cleared
// or killed: the trigger cleans up, e.g. deletes its pod) or were taken
// over by another triggerer (stopped here without cleaning up). It judges
// only the triggers that ran before it read what this triggerer owns: one
// claimed and started in between is ours, though the read missed it.
func (t *Triggerer) cancelRemoved(ctx context.Context) {
	t.mu.Lock()
	before := make(map[int64]*runningTrigger, len(t.running))
	for id, r := range t.running {
		before[id] = r
	}
	t.mu.Unlock()
	if len(before) == 0 {
		return
	}
	owned, err := t.store.OwnedTriggerIDs(ctx, t.id)
	if err != nil {
		return
	}
	mine := make(map[int64]bool, len(owned))
	for _, id := range owned {
		mine[id] = true
	}
	var lost []int64
	for id := range before {
		if !mine[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) == 0 {
		return
	}
	existing, err := t.store.ExistingTriggerIDs(ctx, lost)
	if err != nil {
		return
	}
	elsewhere := make(map[int64]bool, len(existing))
	for _, id := range existing {
		elsewhere[id] = true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range lost {
		r, ok := t.running[id]
		if !ok || r != before[id] {
			continue // ended, or ended and claimed again since
		}
		if elsewhere[id] {
			t.log.Warn("trigger taken over by another triggerer; stopping it here", "trigger_id", id)
			r.cancel(errTakenOver)
		} else {
			r.cancel(errCancelled)
		}
	}
}

// claimLoop claims triggers while there is capacity: when woken (a trigger
// was created or released), and every PollInterval as a fallback.
func (t *Triggerer) claimLoop(ctx context.Context, wake <-chan struct{}) {
	poll := time.NewTicker(t.cfg.PollInterval)
	defer poll.Stop()
	// For a while after start (a restart after a crash, typically), say
	// which silent triggerers' triggers will be taken over and when,
	// instead of waiting out their heartbeat threshold without a word.
	told := map[string]bool{}
	watchSilentUntil := time.Now().Add(2 * t.cfg.HeartbeatThreshold)
	for {
		if time.Now().Before(watchSilentUntil) {
			t.tellSilentOwners(ctx, told)
		}
		if free := t.cfg.Capacity - t.Running(); free > 0 {
			var claimed []store.Trigger
			err := t.store.InTx(ctx, func(q store.Q) error {
				var err error
				claimed, err = q.ClaimTriggers(ctx, t.id, min(free, 500), t.cfg.HeartbeatThreshold)
				return err
			})
			if err != nil && ctx.Err() == nil {
				t.log.Warn("claim triggers", "error", err)
			}
			t.logTakeovers(ctx, claimed)
			for _, tr := range claimed {
				t.start(ctx, tr)
			}
			if len(claimed) == min(free, 500) && len(claimed) > 0 {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
		}
	}
}

func (t *Triggerer) start(parent context.Context, tr store.Trigger) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	t.mu.Lock()
	if _, dup := t.running[tr.ID]; dup {
		t.mu.Unlock()
		cancel(nil)
		return
	}
	t.running[tr.ID] = &runningTrigger{cancel: cancel, kind: tr.Kind, args: tr.Args}
	t.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer func() {
			t.mu.Lock()
			delete(t.running, tr.ID)
			t.mu.Unlock()
			cancel(nil)
		}()
		t.run(ctx, tr)
	}()
}

// run runs one trigger to its end and delivers the outcome.
func (t *Triggerer) run(ctx context.Context, tr store.Trigger) {
	kind, ok := t.kinds[tr.Kind]
	var event operators.Event
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("no trigger kind %q in this triggerer", tr.Kind)
	case tr.Deadline != nil && !time.Now().Before(*tr.Deadline):
		event = operators.Event{Status: operators.EventTimeout, Message: fmt.Sprintf("trigger deadline %s passed", tr.Deadline.Format(time.RFC3339))}
	default:
		runCtx := ctx
		if tr.Deadline != nil {
			var cancel context.CancelFunc
			runCtx, cancel = context.WithDeadline(ctx, *tr.Deadline)
			defer cancel()
		}
		event, err = t.runKind(runCtx, kind, tr)
		if err != nil && ctx.Err() == nil && runCtx.Err() == context.DeadlineExceeded {
			event, err = operators.Event{Status: operators.EventTimeout, Message: fmt.Sprintf("trigger deadline %s passed (execution_timeout or the operator's own timeout)", tr.Deadline.Format(time.RFC3339))}, nil
		}
	}
	if cause := context.Cause(ctx); cause != nil {
		if errors.Is(cause, errCancelled) {
			if c, ok := kind.(operators.TriggerCanceller); ok {
				cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				if err := c.Cancel(cctx, tr.Args); err != nil {
					t.log.Warn("clean up cancelled trigger", "trigger", tr.ID, "error", err)
				}
				cancel()
			}
		}
		return // released or cancelled: nothing to deliver
	}
	if err != nil {
		event = operators.ErrorEvent("%v", err)
	}
	t.fire(context.WithoutCancel(ctx), tr, event)
}

func (t *Triggerer) runKind(ctx context.Context, kind operators.Trigger, tr store.Trigger) (ev operators.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("trigger %s panicked: %v", tr.Kind, r)
		}
	}()
	return kind.Run(ctx, tr.Args)
}

func (t *Triggerer) fire(ctx context.Context, tr store.Trigger, event operators.Event) {
	raw, err := json.Marshal(event)
	if err != nil { // a Detail that is not JSON: the task must still resume
		event = operators.ErrorEvent("%s trigger: event: %v", tr.Kind, err)
		raw, _ = json.Marshal(event)
	}
	t.firing.fire(ctx, t, &fireReq{tr: tr, status: event.Status, raw: raw})
}

// fireReq is one trigger's event waiting to be delivered; done is closed
// once it was (or was given up after retries).
type fireReq struct {
	tr     store.Trigger
	status operators.EventStatus
	raw    []byte
	done   chan struct{}
}

// firing batches deliveries: the events that arrive while one transaction
// delivers wait and go together in the next one, so thousands of pods
// finishing at once cost a few transactions, not one commit each. There is
// no goroutine to start or stop: the first trigger to find no delivery
// under way delivers every waiting event until none waits.
type firing struct {
	mu         sync.Mutex
	pending    []*fireReq
	delivering bool
}

// fire delivers r, or hands it to the delivery under way; it returns once
// r was delivered.
func (f *firing) fire(ctx context.Context, t *Triggerer, r *fireReq) {
	r.done = make(chan struct{})
	f.mu.Lock()
	f.pending = append(f.pending, r)
	if f.delivering {
		f.mu.Unlock()
		<-r.done
		return
	}
	f.delivering = true
	for {
		batch := f.pending
		f.pending = nil
		if len(batch) == 0 {
			f.delivering = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		t.deliver(ctx, batch)
		for _, b := range batch {
			close(b.done)
		}
		f.mu.Lock()
	}
}

// maxFireBatch bounds one delivery transaction.
const maxFireBatch = 1000

// deliver records a batch of events, retrying a failed transaction.
func (t *Triggerer) deliver(ctx context.Context, batch []*fireReq) {
	for len(batch) > maxFireBatch {
		t.deliver(ctx, batch[:maxFireBatch])
		batch = batch[maxFireBatch:]
	}
	ids, events := make([]int64, len(batch)), make([]json.RawMessage, len(batch))
	for i, r := range batch {
		ids[i], events[i] = r.tr.ID, r.raw
	}
	for attempt := 1; attempt <= 5; attempt++ {
		var ok []bool
		err := t.store.InTx(ctx, func(q store.Q) error {
			var err error
			ok, err = q.FireTriggers(ctx, ids, events)
			return err
		})
		if err == nil {
			for i, r := range batch {
				if t.cfg.Metrics != nil {
					t.cfg.Metrics.TriggersFired.WithLabelValues(string(r.status)).Inc()
				}
				t.log.Debug("trigger fired", "trigger", r.tr.ID, "task_instance", r.tr.TaskInstanceID, "status", r.status, "applied", ok[i])
			}
			return
		}
		t.log.Error("deliver trigger events", "triggers", len(batch), "error", err, "attempt", attempt)
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

// logTakeovers tells, in the daemon log and in each task's log, that
// triggers were taken over from a triggerer that stopped heartbeating — so
// a task that waited out the heartbeat threshold after a crash says why.
func (t *Triggerer) logTakeovers(ctx context.Context, claimed []store.Trigger) {
	var lines []store.LogLine
	for _, tr := range claimed {
		if tr.TakenFrom == "" || tr.TakenFrom == t.id {
			continue
		}
		since := "its heartbeat row is gone"
		if tr.TakenFromBeat != nil {
			since = "it last heartbeat at " + tr.TakenFromBeat.UTC().Format(time.RFC3339) +
				" (" + time.Since(*tr.TakenFromBeat).Round(time.Second).String() + " ago)"
		}
		msg := fmt.Sprintf("triggerer %s stopped heartbeating (%s); its trigger %d taken over by %s", tr.TakenFrom, since, tr.ID, t.id)
		t.log.Warn("took over a trigger", "trigger_id", tr.ID, "from", tr.TakenFrom, "detail", msg)
		ti, err := t.store.TaskInstanceByID(ctx, tr.TaskInstanceID)
		if err != nil {
			continue
		}
		lines = append(lines, store.LogLine{TIID: ti.ID, TryNumber: ti.TryNumber, At: time.Now(), Source: "podflow", Line: msg})
	}
	if len(lines) > 0 {
		if err := t.store.AppendLogs(ctx, lines); err != nil && ctx.Err() == nil {
			t.log.Warn("write takeover to the task logs", "error", err)
		}
	}
}

// tellSilentOwners logs, once per triggerer, that a silent triggerer's
// triggers will be taken over and in how long.
func (t *Triggerer) tellSilentOwners(ctx context.Context, told map[string]bool) {
	quiet := 2 * t.cfg.HeartbeatInterval
	if quiet <= 0 || quiet > t.cfg.HeartbeatThreshold/2 {
		quiet = t.cfg.HeartbeatThreshold / 2
	}
	owners, err := t.store.SilentTriggerOwners(ctx, t.id, quiet, t.cfg.HeartbeatThreshold)
	if err != nil {
		return
	}
	for _, o := range owners {
		if told[o.Owner] {
			continue
		}
		told[o.Owner] = true
		left := time.Until(o.LastBeat.Add(t.cfg.HeartbeatThreshold)).Round(time.Second)
		t.log.Warn("a triggerer stopped heartbeating; its triggers will be taken over when its heartbeat is older than the threshold",
			"triggerer", o.Owner, "triggers", o.Triggers, "last_heartbeat", o.LastBeat.UTC().Format(time.RFC3339),
			"threshold", t.cfg.HeartbeatThreshold, "taken_over_in", left)
	}
}
