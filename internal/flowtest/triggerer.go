package flowtest

import (
	"time"

	"github.com/podflow/podflow/internal/triggerer"
)

// Triggerer starts a triggerer running the trigger kinds of the bundle's
// operators, with a fast claim poll and heartbeat (200 ms: it notices a
// trigger taken from it at once) that mod may change (as it may the
// capacity, 100, and heartbeat threshold, 30 s); it stops at cleanup.
func (b *Bundle) Triggerer(mod func(*triggerer.Config)) *triggerer.Triggerer {
	b.T.Helper()
	cfg := triggerer.Config{
		Capacity:           100,
		HeartbeatThreshold: 30 * time.Second,
		PollInterval:       100 * time.Millisecond,
		HeartbeatInterval:  200 * time.Millisecond,
		Logger:             Logger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	tr := triggerer.New(b.Store, b.Ops.Triggers(), cfg)
	b.Go("triggerer", tr.Run)
	return tr
}
