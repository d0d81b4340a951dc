package scheduler

import (
	"context"

	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/store"
)

// subscriptions are the scheduler's wake-ups from the process's notifier.
type subscriptions struct {
	queued, wake *notifier.Subscription
}

func (s *Scheduler) subscribe(n *notifier.Notifier) (subscriptions, error) {
	queued, err := n.Subscribe(store.ChannelTaskQueued)
	if err != nil {
		return subscriptions{}, err
	}
	wake, err := n.Subscribe(store.ChannelSchedulerWake)
	if err != nil {
		queued.Close()
		return subscriptions{}, err
	}
	return subscriptions{queued: queued, wake: wake}, nil
}

func (subs subscriptions) close() {
	subs.queued.Close()
	subs.wake.Close()
}

// listen wakes the claimer on "task queued" (queued by another scheduler, a
// retry or a fired trigger) and the loop on "scheduler wake" (a run was
// created) until ctx ends. Polling in the loop and the claimer covers any
// notification lost while the notifier reconnects.
func (s *Scheduler) listen(ctx context.Context, subs subscriptions) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-subs.queued.C:
			signal(s.claimWake)
		case <-subs.wake.C:
			signal(s.loopWake)
		}
	}
}
