package scheduler

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/internal/store"
)

// listen wakes the claimer on "task queued" and the loop on "task finished"
// notifications, reconnecting on errors. Polling in the loop and the claimer
// covers any notification lost while reconnecting.
func (s *Scheduler) listen(ctx context.Context) {
	for ctx.Err() == nil {
		if err := s.listenOnce(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("listen for notifications", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (s *Scheduler) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.store.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{store.ChannelTaskQueued, store.ChannelSchedulerWake} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return err
		}
	}
	// Anything queued before we listened is found by this first wake-up.
	signal(s.claimWake)
	signal(s.loopWake)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case store.ChannelTaskQueued:
			signal(s.claimWake)
		default:
			signal(s.loopWake)
		}
	}
}
