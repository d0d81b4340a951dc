package scheduler

import (
	"context"
	"fmt"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
)

// VersionDAG parses a stored DAG version: a run's pinned one, or a DAG's
// current one. The CLI and the API read DAGs through it.
func VersionDAG(ctx context.Context, q store.Q, p *dag.Parser, hash string) (*dag.DAG, error) {
	src, path, err := q.DagSource(ctx, hash)
	if err != nil {
		return nil, err
	}
	d, errs := p.ParseBytes(path, src)
	if len(errs) > 0 {
		return nil, fmt.Errorf("DAG version %.12s (%s) does not parse any more:\n%w", hash, path, errs)
	}
	d.Hash = hash
	return d, nil
}

// CurrentDAG parses a DAG's current version; store.ErrNotFound when the
// database knows no good version of it.
func CurrentDAG(ctx context.Context, q store.Q, p *dag.Parser, dagID string) (*dag.DAG, error) {
	row, err := q.Dag(ctx, dagID)
	if err != nil {
		return nil, err
	}
	if row.Hash == "" {
		return nil, fmt.Errorf("dag %q has never parsed: %w", dagID, store.ErrNotFound)
	}
	return VersionDAG(ctx, q, p, row.Hash)
}
