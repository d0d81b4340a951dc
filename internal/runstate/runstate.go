// Package runstate decides, from the states of a DAG run's task instances,
// what happens next: which tasks are ready to queue, which become
// upstream_failed or skipped by their trigger rule, and whether the run is
// finished. It is pure: no I/O, plain values in and out.
//
//	none ──ready──▶ queued ──claim──▶ running ──▶ success | failed | skipped
//	  │                                   │  └──▶ up_for_retry ──delay──▶ queued
//	  ├──▶ upstream_failed                └──▶ deferred ──event──▶ queued
//	  └──▶ skipped
package runstate

import "github.com/podflow/podflow/dag"

// Task instance states.
const (
	None           = "none"
	Scheduled      = "scheduled" // no longer entered: a fired trigger queues its task (rows of older versions)
	Queued         = "queued"
	Running        = "running"
	Deferred       = "deferred"
	Success        = "success"
	Failed         = "failed"
	UpForRetry     = "up_for_retry"
	UpstreamFailed = "upstream_failed"
	Skipped        = "skipped"
)

// Run states.
const (
	RunQueued  = "queued"
	RunRunning = "running"
	RunSuccess = "success"
	RunFailed  = "failed"
)

// Done reports whether a task instance state is final.
func Done(state string) bool {
	switch state {
	case Success, Failed, UpstreamFailed, Skipped:
		return true
	}
	return false
}

// Decision is what a run's task instances become next.
type Decision struct {
	Queue          []string // none → queued
	UpstreamFailed []string // none → upstream_failed
	Skip           []string // none → skipped
	// RunState is RunSuccess or RunFailed when every task instance is done
	// (after applying this decision), else "".
	RunState string
}

// Empty reports whether the decision changes nothing.
func (d Decision) Empty() bool {
	return len(d.Queue) == 0 && len(d.UpstreamFailed) == 0 && len(d.Skip) == 0 && d.RunState == ""
}

// Decide applies trigger rules until nothing changes: a task that becomes
// skipped or upstream_failed can make its own downstreams decidable in the
// same pass. states maps task_id to its current state; tasks missing from it
// count as none.
func Decide(d *dag.DAG, states map[string]string) Decision {
	cur := make(map[string]string, len(d.Tasks))
	for _, t := range d.Tasks {
		s, ok := states[t.ID]
		if !ok {
			s = None
		}
		cur[t.ID] = s
	}
	var dec Decision
	for changed := true; changed; {
		changed = false
		for _, t := range d.Tasks {
			if cur[t.ID] != None {
				continue
			}
			switch next := ready(t, cur); next {
			case Queued:
				dec.Queue = append(dec.Queue, t.ID)
				cur[t.ID] = Queued
			case UpstreamFailed:
				dec.UpstreamFailed = append(dec.UpstreamFailed, t.ID)
				cur[t.ID] = UpstreamFailed
				changed = true
			case Skipped:
				dec.Skip = append(dec.Skip, t.ID)
				cur[t.ID] = Skipped
				changed = true
			}
		}
	}
	dec.RunState = finalRunState(d, cur)
	return dec
}

// counts of upstream states.
type counts struct {
	total, success, failed, upstreamFailed, skipped, done int
}

func countUpstream(t *dag.Task, cur map[string]string) counts {
	c := counts{total: len(t.Upstream)}
	for _, u := range t.Upstream {
		switch cur[u] {
		case Success:
			c.success++
		case Failed:
			c.failed++
		case UpstreamFailed:
			c.upstreamFailed++
		case Skipped:
			c.skipped++
		}
	}
	c.done = c.success + c.failed + c.upstreamFailed + c.skipped
	return c
}

// ready returns Queued, UpstreamFailed, Skipped, or "" (wait) for a task in
// state none, by its trigger rule — Airflow's semantics.
func ready(t *dag.Task, cur map[string]string) string {
	if len(t.Upstream) == 0 {
		return Queued // as Airflow: trigger rules apply to upstreams only
	}
	c := countUpstream(t, cur)
	allDone := c.done == c.total
	failed := c.failed + c.upstreamFailed
	switch t.TriggerRule {
	case dag.Always:
		return Queued
	case dag.AllDone:
		if allDone {
			return Queued
		}
	case dag.AllFailed:
		if c.success > 0 {
			return Skipped
		}
		if allDone {
			if failed == c.total {
				return Queued
			}
			return Skipped
		}
	case dag.OneSuccess:
		if c.success > 0 {
			return Queued
		}
		if allDone {
			if c.skipped == c.total && c.total > 0 {
				return Skipped
			}
			return UpstreamFailed
		}
	case dag.OneFailed:
		if failed > 0 {
			return Queued
		}
		if allDone {
			return Skipped
		}
	case dag.NoneFailed:
		if failed > 0 {
			return UpstreamFailed
		}
		if allDone {
			return Queued
		}
	case dag.NoneFailedMinOneSuccess:
		if failed > 0 {
			return UpstreamFailed
		}
		if allDone {
			if c.success > 0 || c.total == 0 {
				return Queued
			}
			return Skipped
		}
	case dag.NoneSkipped:
		if c.skipped > 0 {
			return Skipped
		}
		if allDone {
			return Queued
		}
	default: // all_success
		if failed > 0 {
			return UpstreamFailed
		}
		if c.skipped > 0 {
			return Skipped
		}
		if allDone {
			return Queued
		}
	}
	return ""
}

// finalRunState: when every task is done, the run failed if any leaf task
// failed or is upstream_failed (Airflow's rule), else it succeeded.
func finalRunState(d *dag.DAG, cur map[string]string) string {
	hasDownstream := map[string]bool{}
	for _, t := range d.Tasks {
		if !Done(cur[t.ID]) {
			return ""
		}
		for _, u := range t.Upstream {
			hasDownstream[u] = true
		}
	}
	for _, t := range d.Tasks {
		if hasDownstream[t.ID] {
			continue
		}
		if s := cur[t.ID]; s == Failed || s == UpstreamFailed {
			return RunFailed
		}
	}
	return RunSuccess
}
