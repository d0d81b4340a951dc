package scheduler

import (
	"context"

	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/store"
)

// subscriptions are the scheduler's wake-ups from the process's notifier.
type subscriptions struct {
	queued, wake, stopped *notifier.Subscription
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
	stopped, err := n.Subscribe(store.ChannelTaskStopped)
	if err != nil {
		queued.Close()
		wake.Close()
		return subscriptions{}, err
	}
	return subscriptions{queued: queued, wake: wake, stopped: stopped}, nil
}

func (subs subscriptions) close() {
	subs.queued.Close()
	subs.wake.Close()
	subs.stopped.Close()
}

// listen wakes the claimer on "task queued" (queued by another scheduler, a
// retry or a fired trigger) and the loop on "scheduler wake" (a run was
// created) until ctx ends, and stops at once the tries taken from this
// scheduler on "task stopped" (a run timed out, a task was cleared).
// Polling in the loop and the claimer, and the check after each heartbeat,
// cover any notification lost while the notifier reconnects.
func (s *Scheduler) listen(ctx context.Context, subs subscriptions) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-subs.queued.C:
			signal(s.claimWake)
		case <-subs.wake.C:
			signal(s.loopWake)
		case <-subs.stopped.C:
			s.stopLostTasks(ctx)
		}
	}
}
