package scheduler

import (
	"context"
	"fmt"
	"sync"
	"time"

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

// dagCachePruneInterval is how often the cache drops versions nothing uses.
const dagCachePruneInterval = 30 * time.Second

// prune keeps only the versions in keep. Dropped versions are parsed again
// from the database should a run need one later.
func (c *dagCache) prune(keep map[string]bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for h := range c.byHash {
		if !keep[h] {
			delete(c.byHash, h)
			n++
		}
	}
	return n
}

// len is how many versions are cached.
func (c *dagCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byHash)
}

// pruneDagCache drops from the cache the DAG versions that are neither a
// DAG's current one nor used by a queued or running run, so that memory
// does not grow with every edit of a DAG file.
func (s *Scheduler) pruneDagCache(ctx context.Context) error {
	keep, err := s.store.LiveDagHashes(ctx)
	if err != nil {
		return err
	}
	if n := s.dags.prune(keep); n > 0 {
		s.log.Debug("dropped unused DAG versions from the cache", "dropped", n, "kept", s.dags.len())
	}
	return nil
}
