package alerts

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/internal/store"
)

// Policy is how delivery retries.
type Policy struct {
	Backoff     time.Duration // delay after the first failed attempt, doubled after each
	MaxBackoff  time.Duration // cap of the delay
	GiveUpAfter time.Duration // from the alert's creation
	Timeout     time.Duration // one attempt, unless the notifier sets its own
}

// Next decides what follows failed attempt number attempt (1-based) of an
// alert created at created: retry at retryAt, or give up (retryAt zero)
// once GiveUpAfter has passed. The last retry is at the limit itself, so a
// receiver that is back just in time still gets it.
func (p Policy) Next(attempt int, created, now time.Time) (retryAt time.Time) {
	limit := created.Add(p.GiveUpAfter)
	if !now.Before(limit) {
		return time.Time{}
	}
	delay := p.Backoff
	for i := 1; i < attempt && delay < p.MaxBackoff; i++ {
		delay *= 2
	}
	delay = min(delay, p.MaxBackoff)
	if at := now.Add(delay); at.Before(limit) {
		return at
	}
	return limit
}

// Deliverer sends due alerts from the outbox. Any number run at once (one
// per scheduler): each claims its alerts with FOR UPDATE SKIP LOCKED and
// leases them for the attempt, so an alert is sent by one of them at a time
// and a sender that dies mid-send only delays it by the lease.
type Deliverer struct {
	Store   *store.Store
	Senders map[string]Sender
	Policy  Policy
	BaseURL string
	Log     hclog.Logger
	// Sent is told the result of every attempt (sent, retry, failed); may
	// be nil.
	Sent func(notifier, result string)
	// Poll is how often the outbox is checked (default 1s); Parallel bounds
	// concurrent sends (default 8).
	Poll     time.Duration
	Parallel int
	// Deadlines are checked every fifth poll, over runs not finished or
	// finished within DeadlineLookback (default 7 days).
	DeadlineLookback time.Duration
}

// Run delivers until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	if d.Log == nil {
		d.Log = hclog.NewNullLogger()
	}
	poll, parallel := d.Poll, d.Parallel
	if poll <= 0 {
		poll = time.Second
	}
	if parallel <= 0 {
		parallel = 8
	}
	lookback := d.DeadlineLookback
	if lookback <= 0 {
		lookback = 7 * 24 * time.Hour
	}
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(poll)
	defer t.Stop()
	for pass := 0; ; pass++ {
		if pass%5 == 0 {
			if n, err := d.Store.FireDeadlines(ctx, lookback); err != nil && ctx.Err() == nil {
				d.Log.Warn("check deadlines", "error", err)
			} else if n > 0 {
				d.Log.Info("deadline alerts written", "count", n)
			}
		}
		for ctx.Err() == nil {
			free := parallel - len(slots)
			if free == 0 {
				break
			}
			batch, err := d.Store.ClaimDueAlerts(ctx, free, d.lease())
			if err != nil {
				if ctx.Err() == nil {
					d.Log.Warn("claim alerts", "error", err)
				}
				break
			}
			for _, a := range batch {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-slots; wg.Done() }()
					d.deliver(ctx, a)
				}()
			}
			if len(batch) < free {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lease is how long a claimed alert is left to its claimer: the longest
// attempt plus a margin.
func (d *Deliverer) lease() time.Duration {
	longest := d.Policy.Timeout
	for _, s := range d.Senders {
		longest = max(longest, s.Timeout())
	}
	return longest + 30*time.Second
}

// deliver makes one attempt and records it.
func (d *Deliverer) deliver(ctx context.Context, a store.Alert) {
	start := time.Now()
	res, err := d.attempt(ctx, a)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and someone retries
	}
	att := store.AlertAttempt{Attempt: a.Attempts, At: start, Duration: time.Since(start), StatusCode: res.StatusCode, Response: res.Response}
	var retryAt time.Time
	result := "sent"
	if err != nil {
		att.Error = err.Error()
		retryAt = d.Policy.Next(a.Attempts, a.CreatedAt, time.Now())
		result = "retry"
		if retryAt.IsZero() {
			result = "failed"
		}
		d.Log.Warn("alert not delivered", "alert", a.ID, "notifier", a.Notifier, "attempt", a.Attempts, "result", result, "error", err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.Store.RecordAlertAttempt(rctx, a.ID, att, err == nil, retryAt); err != nil {
		d.Log.Warn("record alert attempt", "alert", a.ID, "error", err)
	}
	if d.Sent != nil {
		d.Sent(a.Notifier, result)
	}
}

func (d *Deliverer) attempt(ctx context.Context, a store.Alert) (Result, error) {
	s, ok := d.Senders[a.Notifier]
	if !ok {
		return Result{}, fmt.Errorf("notifier %q is not declared in this scheduler's podflow.yaml", a.Notifier)
	}
	timeout := s.Timeout()
	if timeout <= 0 {
		timeout = d.Policy.Timeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := NewMessage(actx, a, s.Template(), d.BaseURL)
	if err != nil {
		return Result{}, err
	}
	return s.Send(actx, m)
}
