// Package notifier keeps one LISTEN connection per process and hands each
// notification to the subscribers of its channel, so the scheduler, the
// triggerer and any waiter of one process share a single connection.
//
//	Postgres ──NOTIFY──▶ Run (one conn, LISTEN ch1 ch2 …) ──▶ Subscription.C (coalesced wake-ups)
//
// Wake-ups are coalesced: a subscriber that is busy sees one pending signal
// however many notifications arrived, and then re-reads the state it cares
// about. Notifications are hints, not messages: while the connection is
// being re-established some may be lost, so after every (re)connect every
// subscriber gets one wake-up, and callers keep a slow poll as a fallback.
package notifier

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
)

// Notifier listens on a fixed set of channels.
type Notifier struct {
	conn     *pgx.ConnConfig
	channels []string
	log      hclog.Logger
	retry    time.Duration

	mu   sync.Mutex
	subs map[string][]*Subscription
}

// New returns a notifier for these channels; it listens once Run runs.
// logger may be nil.
func New(conn *pgx.ConnConfig, logger hclog.Logger, channels ...string) *Notifier {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Notifier{conn: conn.Copy(), channels: slices.Clone(channels), log: logger,
		retry: time.Second, subs: map[string][]*Subscription{}}
}

// Subscription receives a coalesced wake-up on C for every notification on
// its channel.
type Subscription struct {
	C       <-chan struct{}
	c       chan struct{}
	channel string
	n       *Notifier
}

// Subscribe subscribes to one of the notifier's channels.
func (n *Notifier) Subscribe(channel string) (*Subscription, error) {
	if !slices.Contains(n.channels, channel) {
		return nil, fmt.Errorf("notifier: %q is not one of the channels it listens on (%v)", channel, n.channels)
	}
	c := make(chan struct{}, 1)
	s := &Subscription{C: c, c: c, channel: channel, n: n}
	n.mu.Lock()
	n.subs[channel] = append(n.subs[channel], s)
	n.mu.Unlock()
	return s, nil
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.n.mu.Lock()
	defer s.n.mu.Unlock()
	s.n.subs[s.channel] = slices.DeleteFunc(s.n.subs[s.channel], func(x *Subscription) bool { return x == s })
}

// Run listens until ctx ends, reconnecting after errors.
func (n *Notifier) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := n.listen(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("listen for notifications", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(n.retry):
			}
		}
	}
}

func (n *Notifier) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, n.conn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range n.channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	// Whatever was notified before we listened is found by this wake-up.
	for _, ch := range n.channels {
		n.wake(ch)
	}
	for {
		msg, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		n.wake(msg.Channel)
	}
}

func (n *Notifier) wake(channel string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.subs[channel] {
		select {
		case s.c <- struct{}{}:
		default:
		}
	}
}
