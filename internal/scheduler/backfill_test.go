package scheduler

import (
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
)

func TestPlanBackfill(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 2, d, 0, 0, 0, 0, time.UTC) }
	d := &dag.DAG{ID: "etl", Schedule: "@daily", StartDate: day(1), EndDate: day(20)}
	existing := []store.Run{
		{RunID: "scheduled__2", LogicalDate: day(2), State: "failed"},
		{RunID: "scheduled__3", LogicalDate: day(3), State: "success"},
		{RunID: "scheduled__4", LogicalDate: day(4), State: "running"},
	}
	steps := func(reprocess string) string {
		plan, err := PlanBackfill(d, day(1), day(5), reprocess, existing)
		if err != nil {
			t.Fatalf("%s: %v", reprocess, err)
		}
		var out []string
		for _, s := range plan {
			switch {
			case s.Create:
				out = append(out, "create")
			case s.Rerun:
				out = append(out, "rerun")
			default:
				out = append(out, "skip")
			}
		}
		return strings.Join(out, ",")
	}
	for reprocess, want := range map[string]string{
		ReprocessNone:      "create,skip,skip,skip,create",
		ReprocessFailed:    "create,rerun,skip,skip,create",
		ReprocessCompleted: "create,rerun,rerun,skip,create",
	} {
		if got := steps(reprocess); got != want {
			t.Errorf("reprocess %s: %s, want %s", reprocess, got, want)
		}
	}
	for _, c := range []struct {
		from, to  time.Time
		reprocess string
		want      string
	}{
		{day(5), day(1), ReprocessNone, "the end 2026-02-01 is before the start 2026-02-05"},
		{day(1).AddDate(0, -2, 0), day(1).AddDate(0, -1, 0), ReprocessNone, "before the DAG's start_date 2026-02-01"},
		{day(21), day(25), ReprocessNone, "after the DAG's end_date 2026-02-20"},
		{day(1), day(2), "all", `--reprocess-behavior "all"`},
	} {
		if _, err := PlanBackfill(d, c.from, c.to, c.reprocess, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("PlanBackfill(%s..%s, %s) = %v, want %q", c.from, c.to, c.reprocess, err, c.want)
		}
	}
}
