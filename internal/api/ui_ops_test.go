package api

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
)

// TestWebUIOperations: the operations the web UI reads its pages with —
// the DAG's structure, the grid, who the caller is and a log read from its
// tail backwards — answer what the spec says, for a viewer.
func TestWebUIOperations(t *testing.T) {
	b := setup(t)
	b.DAG("etl", etlDAG)
	b.Scheduler(nil)
	b.WaitFor("the scheduler syncs etl", 30*time.Second, func() bool { return b.call("GET", "/dags/etl", "viewer", nil).Status == 200 })
	runs := []string{b.Trigger("etl", `{"who": "a"}`), b.Trigger("etl", `{"who": "b"}`)}
	for _, r := range runs {
		if st := b.WaitRun("etl", r, time.Minute); st != "success" {
			t.Fatalf("run %s: %s", r, st)
		}
	}

	var st gen.DAGStructure
	b.must(200, "GET", "/dags/etl/structure", "viewer", nil).json(t, &st)
	if len(st.Tasks) != 3 || st.Tasks[1].TaskId != "transform" || strings.Join(st.Tasks[1].Upstream, ",") != "extract" || st.NextRunDue != nil {
		t.Errorf("structure %+v", st)
	}
	b.must(404, "GET", "/dags/nope/structure", "viewer", nil)

	var g gen.DAGGrid
	b.must(200, "GET", "/dags/etl/grid?limit=1", "viewer", nil).json(t, &g)
	if g.TotalEntries != 2 || len(g.DagRuns) != 1 || g.DagRuns[0].DagRun.DagRunId != runs[1] || len(g.DagRuns[0].Cells) != 3 {
		t.Fatalf("grid page 1: %+v", g)
	}
	for _, c := range g.DagRuns[0].Cells {
		if c.State != "success" || c.Mapped != 0 {
			t.Errorf("cell %+v", c)
		}
	}
	b.must(200, "GET", "/dags/etl/grid?limit=1&offset=1", "viewer", nil).json(t, &g)
	if len(g.DagRuns) != 1 || g.DagRuns[0].DagRun.DagRunId != runs[0] {
		t.Errorf("grid page 2: %+v", g)
	}

	var me gen.Me
	b.must(200, "GET", "/auth/me", "op", nil).json(t, &me)
	if me.Role != "op" || me.Name != "op-user" {
		t.Errorf("me: %+v", me)
	}
	b.must(401, "GET", "/auth/me", "", nil)

	// The log (line 1..5, 21, plus the runner's own lines) read backwards, 2 lines a page.
	logPath := "/dags/etl/dagRuns/" + url.PathEscape(runs[0]) + "/taskInstances/extract/logs/1"
	var forward gen.TaskLog
	b.must(200, "GET", logPath+"?limit=1000", "viewer", nil).json(t, &forward)
	var backward []string
	query := "?tail=true&limit=2"
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("reading backwards does not end")
		}
		var lg gen.TaskLog
		b.must(200, "GET", logPath+query, "viewer", nil).json(t, &lg)
		if pages == 0 && lg.ContinuationToken == nil {
			t.Error("a tail read has no continuation_token to follow from")
		}
		var page []string
		for _, l := range lg.Content {
			page = append(page, l.Line)
		}
		backward = append(page, backward...)
		if lg.PreviousToken == nil {
			break
		}
		query = "?limit=2&before=" + *lg.PreviousToken
	}
	var want []string
	for _, l := range forward.Content {
		want = append(want, l.Line)
	}
	if strings.Join(backward, "\n") != strings.Join(want, "\n") || len(want) < 6 {
		t.Errorf("log read backwards:\n%s\nforwards:\n%s", strings.Join(backward, "\n"), strings.Join(want, "\n"))
	}
	b.must(400, "GET", logPath+"?before=x", "viewer", nil)
}
