package api

import (
	"context"
	"sync"
	"time"

	"github.com/podflow/podflow/dag"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

// The two read operations the web UI's DAG page is built from: the task
// graph with the params (graph, trigger form) and the grid of runs × tasks.

func (s *Server) GetDagStructure(ctx context.Context, req gen.GetDagStructureRequestObject) (gen.GetDagStructureResponseObject, error) {
	d, err := s.currentDAG(ctx, req.DagId)
	if err != nil {
		return nil, err
	}
	out := gen.GetDagStructure200JSONResponse{DagId: d.ID, VersionHash: d.Hash, Description: d.Description,
		Params: map[string]any{}, Tasks: make([]gen.TaskNode, 0, len(d.Tasks))}
	if logical, due, ok := d.NextDue(time.Now()); ok {
		out.NextRunLogicalDate, out.NextRunDue = &logical, &due
	}
	for k, v := range d.Params {
		out.Params[k] = v
	}
	for _, t := range d.Tasks {
		up := append([]string{}, t.Upstream...)
		out.Tasks = append(out.Tasks, gen.TaskNode{TaskId: t.ID, Operator: t.Operator, Upstream: up})
	}
	return out, nil
}

// gridPageMax bounds a grid page: 100 runs × 50 tasks is still one small answer.
const gridPageMax = 100

func (s *Server) GetDagGrid(ctx context.Context, req gen.GetDagGridRequestObject) (gen.GetDagGridResponseObject, error) {
	if _, err := s.st.Dag(ctx, req.DagId); err != nil {
		return nil, err
	}
	limit, offset := page(req.Params.Limit, req.Params.Offset)
	limit = min(limit, gridPageMax)
	runs, total, err := s.st.ListRuns(ctx, store.RunFilter{DagID: req.DagId, Limit: limit, Offset: offset})
	if err != nil {
		return nil, err
	}
	pks := make([]int64, len(runs))
	for i, r := range runs {
		pks[i] = r.PK
	}
	cells, err := s.st.TaskCells(ctx, pks)
	if err != nil {
		return nil, err
	}
	byRun := GridCells(cells)
	out := gen.GetDagGrid200JSONResponse{DagRuns: make([]gen.GridRun, 0, len(runs)), TotalEntries: total}
	for _, r := range runs {
		out.DagRuns = append(out.DagRuns, gen.GridRun{DagRun: runOf(r), Cells: byRun[r.PK]})
	}
	return out, nil
}

// GridCells folds task instances into one cell per task and run: a mapped
// task's instances become counts by state, its state the most pressing of
// them (mappedState).
func GridCells(tis []store.TaskCell) map[int64][]gen.GridCell {
	out := map[int64][]gen.GridCell{}
	index := map[int64]map[string]int{}
	for _, t := range tis {
		if index[t.RunPK] == nil {
			index[t.RunPK] = map[string]int{}
		}
		i, ok := index[t.RunPK][t.TaskID]
		if !ok {
			i = len(out[t.RunPK])
			index[t.RunPK][t.TaskID] = i
			out[t.RunPK] = append(out[t.RunPK], gen.GridCell{TaskId: t.TaskID, State: gen.TaskInstanceState(t.State)})
		}
		c := &out[t.RunPK][i]
		if t.MapIndex < 0 {
			if c.Mapped == 0 {
				c.State = gen.TaskInstanceState(t.State)
			}
			continue
		}
		if c.StateCounts == nil {
			c.StateCounts = &map[string]int{}
		}
		c.Mapped++
		(*c.StateCounts)[t.State]++
		c.State = gen.TaskInstanceState(mappedState(*c.StateCounts))
	}
	return out
}

// mappedStatePrecedence orders states by how much a person needs to see
// them: one failed instance makes the mapped task's cell failed.
var mappedStatePrecedence = []string{"failed", "upstream_failed", "up_for_retry", "running", "deferred", "queued", "scheduled", "none", "skipped", "success"}

func mappedState(counts map[string]int) string {
	for _, s := range mappedStatePrecedence {
		if counts[s] > 0 {
			return s
		}
	}
	return "none"
}

// versionCache keeps parsed DAG versions: a version (its hash) never
// changes, and the UI asks for the same few on every page.
type versionCache struct {
	mu sync.Mutex
	m  map[string]*dag.DAG
}

// versionCacheMax bounds the cache; when full it starts over.
const versionCacheMax = 1000

func (s *Server) currentDAG(ctx context.Context, dagID string) (*dag.DAG, error) {
	row, err := s.st.Dag(ctx, dagID)
	if err != nil {
		return nil, err
	}
	s.versions.mu.Lock()
	d, ok := s.versions.m[row.Hash]
	s.versions.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err = scheduler.CurrentDAG(ctx, s.st.Q, s.parser, dagID)
	if err != nil {
		return nil, err
	}
	s.versions.mu.Lock()
	if s.versions.m == nil || len(s.versions.m) >= versionCacheMax {
		s.versions.m = map[string]*dag.DAG{}
	}
	s.versions.m[d.Hash] = d
	s.versions.mu.Unlock()
	return d, nil
}
