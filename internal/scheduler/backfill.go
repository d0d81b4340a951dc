package scheduler

import (
	"fmt"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// Reprocess behaviours of a backfill (Airflow 3's --reprocess-behavior):
// what to do with a date that already has a run.
const (
	ReprocessNone      = "none"      // leave it
	ReprocessFailed    = "failed"    // rerun it (clear it) if it failed
	ReprocessCompleted = "completed" // rerun it if it finished, failed or not
)

// BackfillStep is what a backfill does for one schedule interval.
type BackfillStep struct {
	LogicalDate time.Time
	// Existing is the run the date already has, if any.
	Existing *store.Run
	// Create: a new backfill run; Rerun: clear Existing so it runs again;
	// neither: Skip says why.
	Create, Rerun bool
	Skip          string
}

// PlanBackfill decides, purely, what a backfill of d between from and to
// does with each schedule interval, given the runs those dates already
// have. A date never gets a second run beside an existing one: the existing
// run is rerun or left, as reprocess says. An empty plan comes with the
// reason (the range is empty, before start_date, after end_date).
func PlanBackfill(d *dag.DAG, from, to time.Time, reprocess string, existing []store.Run) ([]BackfillStep, error) {
	switch reprocess {
	case ReprocessNone, ReprocessFailed, ReprocessCompleted:
	default:
		return nil, fmt.Errorf("--reprocess-behavior %q: want none, failed or completed", reprocess)
	}
	if d.Schedule == "" || d.Schedule == "@once" {
		return nil, fmt.Errorf("DAG %s has no recurring schedule to backfill", d.ID)
	}
	if to.Before(from) {
		return nil, fmt.Errorf("the range is empty: the end %s is before the start %s", day(to), day(from))
	}
	if !d.StartDate.IsZero() && to.Before(d.StartDate) {
		return nil, fmt.Errorf("nothing to backfill: the range ends %s, before the DAG's start_date %s", day(to), day(d.StartDate))
	}
	if !d.EndDate.IsZero() && from.After(d.EndDate) {
		return nil, fmt.Errorf("nothing to backfill: the range starts %s, after the DAG's end_date %s", day(from), day(d.EndDate))
	}
	byDate := map[time.Time]*store.Run{}
	for i := range existing {
		r := &existing[i]
		if _, seen := byDate[r.LogicalDate.UTC()]; !seen {
			byDate[r.LogicalDate.UTC()] = r
		}
	}
	var plan []BackfillStep
	for at := from.Add(-time.Nanosecond); ; {
		next, ok := d.NextRun(at)
		if !ok || next.After(to) {
			break
		}
		at = next
		step := BackfillStep{LogicalDate: next, Existing: byDate[next.UTC()]}
		r := step.Existing
		switch {
		case r == nil:
			step.Create = true
		case r.State == runstate.RunQueued || r.State == runstate.RunRunning:
			step.Skip = fmt.Sprintf("run %s is still %s", r.RunID, r.State)
		case reprocess == ReprocessCompleted, reprocess == ReprocessFailed && r.State == runstate.RunFailed:
			step.Rerun = true
		default:
			step.Skip = fmt.Sprintf("has run %s (%s); --reprocess-behavior %s reruns it", r.RunID, r.State, suggestReprocess(r.State))
		}
		plan = append(plan, step)
	}
	if len(plan) == 0 {
		return nil, fmt.Errorf("no interval of the schedule %s falls between %s and %s", d.Schedule, day(from), day(to))
	}
	return plan, nil
}

func suggestReprocess(state string) string {
	if state == runstate.RunFailed {
		return ReprocessFailed
	}
	return ReprocessCompleted
}

func day(t time.Time) string {
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return t.Format("2006-01-02")
	}
	return t.Format(time.RFC3339)
}
