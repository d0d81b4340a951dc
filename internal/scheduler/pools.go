package scheduler

import (
	"context"

	"github.com/podflow/podflow/internal/store"
)

// readPools refreshes the pool slots the workers claim under from the pools
// table (the API changes it; podflow.yaml's pools were saved at start).
func (s *Scheduler) readPools(ctx context.Context) error {
	slots, err := s.store.PoolSlots(ctx)
	if err != nil {
		return err // keep the last slots read
	}
	s.pools.Store(&store.Limits{Pools: slots, DefaultSlot: s.cfg.Limits.DefaultSlot})
	return nil
}

// limits are the pool slots to claim under.
func (s *Scheduler) limits() store.Limits {
	if l := s.pools.Load(); l != nil {
		return *l
	}
	return s.cfg.Limits
}
