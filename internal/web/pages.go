package web

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
)

// GridPage is how many runs the grid shows per page.
const GridPage = 25

// LogTail is how many lines a log page opens with (its end) and loads
// per "earlier" click.
const LogTail = 2000

// LogLinkContext is how many lines a deep link to a log line shows before it.
const LogLinkContext = 100

type dagRow struct {
	gen.DAG
	Runs    []gen.DAGRun // newest first
	NextRun *time.Time
}

func (u *UI) dagsData(r *http.Request, v *view) error {
	v.Title, v.Nav = "DAGs", "dags"
	var dags gen.DAGCollection
	if err := u.call(r, "GET", "/dags", url.Values{"limit": {"500"}, "order_by": {"dag_id"}}, nil, &dags); err != nil {
		return err
	}
	var ies gen.ImportErrorCollection
	if err := u.call(r, "GET", "/importErrors", url.Values{"limit": {"100"}}, nil, &ies); err != nil {
		return err
	}
	rows := make([]dagRow, 0, len(dags.Dags))
	for _, d := range dags.Dags {
		row := dagRow{DAG: d}
		var runs gen.DAGRunCollection
		if err := u.call(r, "GET", "/dags/"+esc(d.DagId)+"/dagRuns", url.Values{"limit": {"10"}}, nil, &runs); err != nil {
			return err
		}
		row.Runs = runs.DagRuns
		if d.TimetableSummary != "" {
			var st gen.DAGStructure
			if err := u.call(r, "GET", "/dags/"+esc(d.DagId)+"/structure", nil, nil, &st); err == nil {
				row.NextRun = st.NextRunDue
			}
		}
		rows = append(rows, row)
	}
	v.Data = map[string]any{"Dags": rows, "ImportErrors": ies.ImportErrors, "Active": anyActiveRuns(rows)}
	return nil
}

func anyActiveRuns(rows []dagRow) bool {
	for _, r := range rows {
		for _, run := range r.Runs {
			if activeRun(string(run.State)) {
				return true
			}
		}
	}
	return false
}

func activeRun(s string) bool { return s == "queued" || s == "running" }

func activeTask(s string) bool {
	switch s {
	case "success", "failed", "skipped", "upstream_failed":
		return false
	}
	return true
}

// dagHeader is what every DAG page shows on top.
type dagHeader struct {
	Dag       gen.DAG
	Structure gen.DAGStructure
	Tab       string
}

func (u *UI) header(r *http.Request, v *view, tab string) (dagHeader, error) {
	dagID := r.PathValue("dag")
	h := dagHeader{Tab: tab}
	if err := u.call(r, "GET", "/dags/"+esc(dagID), nil, nil, &h.Dag); err != nil {
		return h, err
	}
	if err := u.call(r, "GET", "/dags/"+esc(dagID)+"/structure", nil, nil, &h.Structure); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			return h, err
		}
		h.Structure = gen.DAGStructure{DagId: dagID} // never parsed: the page shows its import error
	}
	v.Title, v.Nav = dagID, "dags"
	return h, nil
}

// gridView is the grid: tasks down, runs across, newest on the left.
type gridView struct {
	dagHeader
	Runs          []gen.DAGRun
	Rows          []gridRow
	Offset, Total int
	Newer, Older  int // offsets of the neighbouring pages; -1: none
	Active        bool
}

type gridRow struct {
	TaskID string
	Cells  []gridCell
}

type gridCell struct {
	Run   gen.DAGRun
	Cell  gen.GridCell
	Known bool // the run has this task
}

func (u *UI) gridData(r *http.Request, v *view) error {
	h, err := u.header(r, v, "grid")
	if err != nil {
		return err
	}
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	var g gen.DAGGrid
	if err := u.call(r, "GET", "/dags/"+esc(h.Dag.DagId)+"/grid", url.Values{"limit": {strconv.Itoa(GridPage)}, "offset": {strconv.Itoa(offset)}}, nil, &g); err != nil {
		return err
	}
	gv := gridView{dagHeader: h, Offset: offset, Total: g.TotalEntries, Newer: -1, Older: -1}
	if offset > 0 {
		gv.Newer = max(offset-GridPage, 0)
	}
	if offset+GridPage < g.TotalEntries {
		gv.Older = offset + GridPage
	}
	gv.Rows = gridRows(h.Structure.Tasks, g.DagRuns)
	for _, run := range g.DagRuns {
		gv.Runs = append(gv.Runs, run.DagRun)
		if activeRun(string(run.DagRun.State)) {
			gv.Active = true
		}
	}
	v.Data = gv
	return nil
}

// gridRows lays the grid's cells out by task: the current version's tasks
// in file order, then tasks only older runs had.
func gridRows(tasks []gen.TaskNode, runs []gen.GridRun) []gridRow {
	var order []string
	seen := map[string]bool{}
	for _, t := range tasks {
		order = append(order, t.TaskId)
		seen[t.TaskId] = true
	}
	var extra []string
	for _, run := range runs {
		for _, c := range run.Cells {
			if !seen[c.TaskId] {
				seen[c.TaskId] = true
				extra = append(extra, c.TaskId)
			}
		}
	}
	sort.Strings(extra)
	order = append(order, extra...)
	rows := make([]gridRow, 0, len(order))
	for _, id := range order {
		row := gridRow{TaskID: id, Cells: make([]gridCell, 0, len(runs))}
		for _, run := range runs {
			c := gridCell{Run: run.DagRun}
			for _, cell := range run.Cells {
				if cell.TaskId == id {
					c.Cell, c.Known = cell, true
					break
				}
			}
			row.Cells = append(row.Cells, c)
		}
		rows = append(rows, row)
	}
	return rows
}

type graphView struct {
	dagHeader
	Layout Layout
	Boxes  []graphBox
	Runs   []gen.DAGRun
	Run    *gen.DAGRun
	Active bool
}

type graphBox struct {
	Placed
	Operator string
	State    string
}

func (u *UI) graphData(r *http.Request, v *view) error {
	h, err := u.header(r, v, "graph")
	if err != nil {
		return err
	}
	nodes := make([]Node, 0, len(h.Structure.Tasks))
	ops := map[string]string{}
	for _, t := range h.Structure.Tasks {
		nodes = append(nodes, Node{ID: t.TaskId, Upstream: t.Upstream})
		ops[t.TaskId] = t.Operator
	}
	l, err := LayOut(nodes)
	if err != nil {
		return fmt.Errorf("lay out %s: %w", h.Dag.DagId, err)
	}
	gv := graphView{dagHeader: h, Layout: l}
	var runs gen.DAGRunCollection
	if err := u.call(r, "GET", "/dags/"+esc(h.Dag.DagId)+"/dagRuns", url.Values{"limit": {"25"}}, nil, &runs); err != nil {
		return err
	}
	gv.Runs = runs.DagRuns
	states := map[string]string{}
	runID := r.URL.Query().Get("run")
	for i, run := range runs.DagRuns {
		if run.DagRunId == runID || (runID == "" && i == 0) {
			gv.Run = &runs.DagRuns[i]
		}
	}
	if gv.Run == nil && runID != "" {
		var run gen.DAGRun
		if err := u.call(r, "GET", "/dags/"+esc(h.Dag.DagId)+"/dagRuns/"+esc(runID), nil, nil, &run); err != nil {
			return err
		}
		gv.Run = &run
	}
	if gv.Run != nil {
		var tis gen.TaskInstanceCollection
		if err := u.call(r, "GET", "/dags/"+esc(h.Dag.DagId)+"/dagRuns/"+esc(gv.Run.DagRunId)+"/taskInstances", url.Values{"limit": {"1000"}}, nil, &tis); err != nil {
			return err
		}
		for _, ti := range tis.TaskInstances {
			if ti.MapIndex < 0 || states[ti.TaskId] == "" {
				states[ti.TaskId] = string(ti.State)
			}
		}
		gv.Active = activeRun(string(gv.Run.State))
	}
	for _, p := range l.Nodes {
		gv.Boxes = append(gv.Boxes, graphBox{Placed: p, Operator: ops[p.ID], State: states[p.ID]})
	}
	v.Data = gv
	return nil
}

type triggerView struct {
	dagHeader
	Params []param
}

// param is one of the DAG's params as a typed form field.
type param struct {
	Name, Kind, Value string // Kind: number, integer, boolean, json, string
	Checked           bool
}

func (u *UI) triggerData(r *http.Request, v *view) error {
	h, err := u.header(r, v, "trigger")
	if err != nil {
		return err
	}
	v.Data = triggerView{dagHeader: h, Params: Params(h.Structure.Params)}
	return nil
}

type sourceView struct {
	dagHeader
	Versions []gen.DAGVersion
	Current  gen.DAGVersion
	Lines    []HighlightedLine
}

func (u *UI) sourceData(r *http.Request, v *view) error {
	h, err := u.header(r, v, "source")
	if err != nil {
		return err
	}
	var vs gen.DAGVersionCollection
	if err := u.call(r, "GET", "/dags/"+esc(h.Dag.DagId)+"/versions", url.Values{"limit": {"50"}}, nil, &vs); err != nil {
		return err
	}
	sv := sourceView{dagHeader: h, Versions: vs.DagVersions}
	want := r.URL.Query().Get("version")
	for _, ver := range vs.DagVersions {
		if ver.VersionHash == want || (want == "" && h.Dag.VersionHash != nil && ver.VersionHash == *h.Dag.VersionHash) {
			sv.Current = ver
		}
	}
	if sv.Current.VersionHash == "" && len(vs.DagVersions) > 0 {
		sv.Current = vs.DagVersions[0]
	}
	sv.Lines = HighlightYAML(sv.Current.Source)
	v.Data = sv
	return nil
}

type runView struct {
	dagHeader
	Run    gen.DAGRun
	Tasks  []gen.TaskInstance
	Active bool
}

func (u *UI) runData(r *http.Request, v *view) error {
	h, err := u.header(r, v, "grid")
	if err != nil {
		return err
	}
	rv := runView{dagHeader: h}
	base := "/dags/" + esc(h.Dag.DagId) + "/dagRuns/" + esc(r.PathValue("run"))
	if err := u.call(r, "GET", base, nil, nil, &rv.Run); err != nil {
		return err
	}
	var tis gen.TaskInstanceCollection
	if err := u.call(r, "GET", base+"/taskInstances", url.Values{"limit": {"1000"}}, nil, &tis); err != nil {
		return err
	}
	rv.Tasks = tis.TaskInstances
	rv.Active = activeRun(string(rv.Run.State))
	v.Title = h.Dag.DagId + " · " + rv.Run.DagRunId
	v.Data = rv
	return nil
}

type taskView struct {
	dagHeader
	Run      gen.DAGRun
	TI       gen.TaskInstance
	Tries    []gen.TaskInstanceTry
	XComs    []gen.XComEntry
	Rendered gen.RenderedFields
	// RenderError says why the rendered fields are missing ("" when shown).
	RenderError string
	// PodEvents are the pod's events for a pod task; PodEventsError says why
	// they are missing (e.g. the webserver has no Kubernetes access).
	PodEvents      gen.PodEventCollection
	PodEventsError string
	MapIndex       string // "" when not mapped
	Active         bool
}

func (u *UI) taskData(r *http.Request, v *view) error {
	h, err := u.header(r, v, "grid")
	if err != nil {
		return err
	}
	tv := taskView{dagHeader: h}
	runBase := "/dags/" + esc(h.Dag.DagId) + "/dagRuns/" + esc(r.PathValue("run"))
	if err := u.call(r, "GET", runBase, nil, nil, &tv.Run); err != nil {
		return err
	}
	q := url.Values{}
	if mi := r.URL.Query().Get("map_index"); mi != "" {
		q.Set("map_index", mi)
		tv.MapIndex = mi
	}
	base := runBase + "/taskInstances/" + esc(r.PathValue("task"))
	if err := u.call(r, "GET", base, q, nil, &tv.TI); err != nil {
		return err
	}
	var tries gen.TaskInstanceTryCollection
	if err := u.call(r, "GET", base+"/tries", q, nil, &tries); err != nil {
		return err
	}
	tv.Tries = tries.TaskInstances
	var xs gen.XComCollection
	if err := u.call(r, "GET", base+"/xcomEntries", q, nil, &xs); err != nil {
		return err
	}
	for _, x := range xs.XcomEntries {
		var full gen.XComEntry
		if err := u.call(r, "GET", base+"/xcomEntries/"+esc(x.Key), q, nil, &full); err != nil {
			return err
		}
		tv.XComs = append(tv.XComs, full)
	}
	if err := u.call(r, "GET", base+"/rendered", nil, nil, &tv.Rendered); err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			return err
		}
		tv.RenderError = ae.Detail // the page shows the rest
	}
	if tv.TI.ExternalName != nil && *tv.TI.ExternalName != "" {
		if err := u.call(r, "GET", base+"/podEvents", q, nil, &tv.PodEvents); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				return err
			}
			tv.PodEventsError = ae.Detail
		}
	}
	tv.Active = activeTask(string(tv.TI.State))
	v.Title = h.Dag.DagId + " · " + tv.TI.TaskId
	v.Data = tv
	return nil
}

type logView struct {
	dagHeader
	Run      gen.DAGRun
	TI       gen.TaskInstance
	Try      int
	Tries    []int
	Lines    []gen.LogLine
	Previous string // token for earlier lines; "" at the start
	Follow   string // token a live follow continues from; "" when the try has ended
	APIPath  string
	MapQuery template.URL // "map_index=N" or ""
	Line     int64        // the line a deep link (?line=N#LN) points at; 0: the page opens at the end
}

func (u *UI) logData(r *http.Request, v *view) error {
	h, err := u.header(r, v, "grid")
	if err != nil {
		return err
	}
	try, err := strconv.Atoi(r.PathValue("try"))
	if err != nil || try < 1 {
		return &apiError{Status: http.StatusBadRequest, Detail: fmt.Sprintf("try %q is not a try number", r.PathValue("try"))}
	}
	lv := logView{dagHeader: h, Try: try}
	runBase := "/dags/" + esc(h.Dag.DagId) + "/dagRuns/" + esc(r.PathValue("run"))
	if err := u.call(r, "GET", runBase, nil, nil, &lv.Run); err != nil {
		return err
	}
	q := url.Values{}
	if mi := r.URL.Query().Get("map_index"); mi != "" {
		q.Set("map_index", mi)
		lv.MapQuery = template.URL("map_index=" + url.QueryEscape(mi))
	}
	base := runBase + "/taskInstances/" + esc(r.PathValue("task"))
	if err := u.call(r, "GET", base, q, nil, &lv.TI); err != nil {
		return err
	}
	for i := 1; i <= lv.TI.TryNumber; i++ {
		lv.Tries = append(lv.Tries, i)
	}
	lv.APIPath = "/api/v1" + base + "/logs/" + strconv.Itoa(try)
	// A deep link (?line=N#LN) opens a page of lines starting a little
	// before line N, without following; otherwise the page opens at the end.
	lq := url.Values{"tail": {"true"}, "limit": {strconv.Itoa(LogTail)}}
	if ls := r.URL.Query().Get("line"); ls != "" {
		n, err := strconv.ParseInt(ls, 10, 64)
		if err != nil || n < 1 {
			return &apiError{Status: http.StatusBadRequest, Detail: fmt.Sprintf("line %q is not a line number", ls)}
		}
		lv.Line = n
		lq = url.Values{"token": {strconv.FormatInt(max(0, n-LogLinkContext-1), 10)}, "limit": {strconv.Itoa(LogTail)}}
	}
	for k, vs := range q {
		lq[k] = vs
	}
	var lg gen.TaskLog
	if err := u.call(r, "GET", base+"/logs/"+strconv.Itoa(try), lq, nil, &lg); err != nil {
		return err
	}
	lv.Lines = lg.Content
	if lg.PreviousToken != nil {
		lv.Previous = *lg.PreviousToken
	} else if lv.Line > 0 && len(lg.Content) > 0 && lg.Content[0].LineNumber > 1 {
		lv.Previous = strconv.FormatInt(lg.Content[0].LineNumber, 10)
	}
	if lv.Line == 0 && try == lv.TI.TryNumber && activeTask(string(lv.TI.State)) && lg.ContinuationToken != nil {
		lv.Follow = *lg.ContinuationToken
	}
	v.Title = lv.TI.TaskId + " · try " + strconv.Itoa(try)
	v.Data = lv
	return nil
}

// rawLog streams a try's whole log as plain text, read through the API
// page by page.
func (u *UI) rawLog(w http.ResponseWriter, r *http.Request) {
	base := "/dags/" + esc(r.PathValue("dag")) + "/dagRuns/" + esc(r.PathValue("run")) + "/taskInstances/" + esc(r.PathValue("task")) +
		"/logs/" + esc(r.PathValue("try"))
	q := url.Values{"limit": {"10000"}}
	if mi := r.URL.Query().Get("map_index"); mi != "" {
		q.Set("map_index", mi)
	}
	started := false
	for {
		var lg gen.TaskLog
		if err := u.call(r, "GET", base, q, nil, &lg); err != nil {
			if !started {
				u.fail(w, r, err)
			}
			return
		}
		if !started {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q",
				fmt.Sprintf("%s-%s-%s-try%s.log", r.PathValue("dag"), r.PathValue("run"), r.PathValue("task"), r.PathValue("try"))))
			started = true
		}
		for _, l := range lg.Content {
			if _, err := io.WriteString(w, l.Line+"\n"); err != nil {
				return
			}
		}
		if lg.ContinuationToken == nil || len(lg.Content) == 0 {
			return
		}
		q.Set("token", *lg.ContinuationToken)
	}
}

type auditView struct {
	Events        []gen.EventLog
	DagID         string
	Offset, Total int
	Newer, Older  int
}

func (u *UI) auditData(r *http.Request, v *view) error {
	v.Title, v.Nav = "Audit log", "audit"
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	q := url.Values{"limit": {"100"}, "offset": {strconv.Itoa(offset)}}
	dagID := r.URL.Query().Get("dag_id")
	if dagID != "" {
		q.Set("dag_id", dagID)
	}
	var es gen.EventLogCollection
	if err := u.call(r, "GET", "/eventLogs", q, nil, &es); err != nil {
		return err
	}
	av := auditView{Events: es.EventLogs, DagID: dagID, Offset: offset, Total: es.TotalEntries, Newer: -1, Older: -1}
	if offset > 0 {
		av.Newer = max(offset-100, 0)
	}
	if offset+100 < es.TotalEntries {
		av.Older = offset + 100
	}
	v.Data = av
	return nil
}

func (u *UI) poolsData(r *http.Request, v *view) error {
	v.Title, v.Nav = "Pools", "pools"
	var ps gen.PoolCollection
	if err := u.call(r, "GET", "/pools", url.Values{"limit": {"500"}}, nil, &ps); err != nil {
		return err
	}
	v.Data = ps.Pools
	return nil
}
