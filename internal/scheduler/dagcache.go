package scheduler

import (
	"context"
	"fmt"
	"sync"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
)

// dagCache holds parsed DAG versions by content hash. A run is pinned to
// its version, so an entry never changes once loaded.
type dagCache struct {
	parser *dag.Parser
	mu     sync.Mutex
	byHash map[string]*dag.DAG
}

func newDagCache(p *dag.Parser) *dagCache {
	return &dagCache{parser: p, byHash: map[string]*dag.DAG{}}
}

func (c *dagCache) put(d *dag.DAG) {
	c.mu.Lock()
	c.byHash[d.Hash] = d
	c.mu.Unlock()
}

// get returns the DAG version with this hash, parsing its stored source on a miss.
func (c *dagCache) get(ctx context.Context, q store.Q, hash string) (*dag.DAG, error) {
	c.mu.Lock()
	d, ok := c.byHash[hash]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	src, path, err := q.DagSource(ctx, hash)
	if err != nil {
		return nil, err
	}
	d, errs := c.parser.ParseBytes(path, src)
	if len(errs) > 0 {
		return nil, fmt.Errorf("dag version %s no longer parses: %w", hash[:12], errs)
	}
	d.Hash = hash // stored under the hash it was saved with
	c.put(d)
	return d, nil
}
