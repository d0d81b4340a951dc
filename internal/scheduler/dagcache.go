package scheduler

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/parallel"
	"github.com/podflow/podflow/internal/store"
)

// dagCache holds DAG versions by content hash, in two tiers: parsed (hot)
// the versions that queued or running runs use, and those put, parsed or
// asked for since the last prune (a second chance, so that a version
// parsed ahead of a boundary is still there when its run starts); as
// source only (cold, a kilobyte or so a DAG
// instead of six or more parsed) every DAG's current version, parsed again
// when a run is created or started. A scheduler with thousands of idle
// DAGs so holds their files, not their parsed forms. A run is pinned to
// its version, so an entry never changes once loaded; a version in
// neither tier is read from the database.
type dagCache struct {
	parser *dag.Parser
	mu     sync.Mutex
	hot    map[string]*dag.DAG
	recent map[string]bool // hot versions put, parsed or asked for since the last prune
	cold   map[string]dagSource
}

// dagSource is a DAG version's file.
type dagSource struct {
	path string
	src  []byte
}

func newDagCache(p *dag.Parser) *dagCache {
	return &dagCache{parser: p, hot: map[string]*dag.DAG{}, recent: map[string]bool{}, cold: map[string]dagSource{}}
}

func (c *dagCache) put(d *dag.DAG) {
	c.mu.Lock()
	c.hot[d.Hash] = d
	c.recent[d.Hash] = true
	c.cold[d.Hash] = dagSource{path: d.Path, src: d.Source}
	c.mu.Unlock()
}

// get returns the DAG version with this hash, parsing it from its source
// (held, else read from the database) when it is not held parsed.
func (c *dagCache) get(ctx context.Context, q store.Q, hash string) (*dag.DAG, error) {
	c.mu.Lock()
	d, ok := c.hot[hash]
	if ok && !c.recent[hash] {
		c.recent[hash] = true
	}
	cold, isCold := c.cold[hash]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	if !isCold {
		src, path, err := q.DagSource(ctx, hash)
		if err != nil {
			return nil, err
		}
		cold = dagSource{path: path, src: src}
	}
	return c.parse(hash, cold)
}

// parse parses a version from its source and holds it parsed.
func (c *dagCache) parse(hash string, s dagSource) (*dag.DAG, error) {
	d, errs := c.parser.ParseBytes(s.path, s.src)
	if len(errs) > 0 {
		return nil, fmt.Errorf("dag version %s no longer parses: %w", hash[:min(12, len(hash))], errs)
	}
	d.Hash = hash // held under the hash it was saved with
	c.mu.Lock()
	c.hot[hash] = d
	c.recent[hash] = true
	c.mu.Unlock()
	return d, nil
}

// warm parses, GOMAXPROCS at a time, the versions among hashes held only
// as source, so that a storm of due DAGs does not parse them one by one.
// Errors are left to get.
func (c *dagCache) warm(hashes []string) {
	var todo []string
	var srcs []dagSource
	c.mu.Lock()
	for _, h := range hashes {
		if _, ok := c.hot[h]; ok {
			continue
		}
		if s, ok := c.cold[h]; ok {
			todo, srcs = append(todo, h), append(srcs, s)
		}
	}
	c.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	parallel.Each(len(todo), func(i int) { _, _ = c.parse(todo[i], srcs[i]) })
}

// dagCachePruneInterval is how often the cache drops parsed versions no
// run uses: a version stays parsed one to two intervals after its last use.
const dagCachePruneInterval = 10 * time.Second

// prune keeps parsed the versions in running and those used since the last
// prune, and as source only the others in current. Dropped versions are
// read from the database should a run need one later.
func (c *dagCache) prune(current, running map[string]bool) (dropped int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	recent := c.recent
	c.recent = map[string]bool{}
	for h, d := range c.hot {
		if running[h] || recent[h] {
			continue
		}
		if current[h] {
			c.cold[h] = dagSource{path: d.Path, src: d.Source}
		}
		delete(c.hot, h)
		dropped++
	}
	for h := range c.cold {
		if !current[h] {
			delete(c.cold, h)
		}
	}
	return dropped
}

// sizes is how many versions are held parsed and as source.
func (c *dagCache) sizes() (hot, cold int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.hot), len(c.cold)
}

// pruneDagCache keeps parsed only the DAG versions that queued or running
// runs use and the other current versions as their source, so that memory
// follows the work in flight, not the number of DAGs, and does not grow
// with every edit of a DAG file.
func (s *Scheduler) pruneDagCache(ctx context.Context) error {
	current, running, err := s.store.LiveDagHashes(ctx)
	if err != nil {
		return err
	}
	if n := s.dags.prune(current, running); n > 0 {
		hot, cold := s.dags.sizes()
		s.log.Debug("dropped parsed DAG versions no run uses", "dropped", n, "parsed", hot, "source_only", cold)
	}
	return nil
}
