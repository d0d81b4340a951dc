package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

const etlDAG = `dag_id: etl
tags: [team-a, nightly]
tasks:
  - task_id: extract
    operator: bash
    bash_command: 'for i in 1 2 3 4 5; do echo line $i; done; echo 21'
  - task_id: transform
    operator: bash
    bash_command: 'echo $(( {{ ti.xcom_pull("extract") }} * 2 ))'
    upstream: [extract]
  - task_id: load
    operator: bash
    bash_command: 'echo "loaded {{ ti.xcom_pull(task_ids="transform") }} for {{ dag_run.conf.get("who", "nobody") }}"'
    upstream: [transform]
`

// waitLines reads a wait stream to its end, checking each line against the
// spec's DAGRunWaitLine.
func (b *testBundle) waitLines(dagID, runID, query string) []gen.DAGRunWaitLine {
	b.T.Helper()
	req := b.request("GET", "/dags/"+dagID+"/dagRuns/"+url.PathEscape(runID)+"/wait?"+query, "viewer", nil)
	res, err := b.client.Do(req)
	if err != nil {
		b.T.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/x-ndjson" {
		b.T.Fatalf("wait: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	schema := b.doc.Components.Schemas["DAGRunWaitLine"].Value
	var lines []gen.DAGRunWaitLine
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			b.T.Fatalf("wait line %q: %v", sc.Text(), err)
		}
		if err := schema.VisitJSON(v); err != nil {
			b.T.Errorf("wait line %s does not fit the spec: %v", sc.Text(), err)
		}
		var l gen.DAGRunWaitLine
		_ = json.Unmarshal(sc.Bytes(), &l)
		lines = append(lines, l)
	}
	return lines
}

// sseEvent is one Server-Sent Event.
type sseEvent struct{ ID, Event, Data string }

// follow reads a log follow to its end.
func (b *testBundle) follow(path string) []sseEvent {
	b.T.Helper()
	req := b.request("GET", path, "viewer", nil)
	req.Header.Set("Accept", "text/event-stream")
	res, err := b.client.Do(req)
	if err != nil {
		b.T.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		b.T.Fatalf("follow: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var events []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.Event != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.Data = line[6:]
		}
	}
	return events
}

// TestTriggerWaitInspect: through HTTP only, trigger a run with conf, wait
// for it (NDJSON), read its task instances, a log paged and followed live
// (SSE), and the XComs; then clear a task with its downstream.
func TestTriggerWaitInspect(t *testing.T) {
	b := setup(t)
	b.DAG("etl", etlDAG)
	b.DAG("slow", `dag_id: slow
tasks:
  - {task_id: ticks, operator: bash, bash_command: 'for i in 1 2 3 4; do echo tick $i; sleep 0.3; done'}
`)
	b.Scheduler(nil)
	b.WaitFor("the scheduler syncs etl", 30*time.Second, func() bool { return b.call("GET", "/dags/etl", "viewer", nil).Status == 200 })

	var dag gen.DAG
	b.must(200, "GET", "/dags/etl", "viewer", nil).json(t, &dag)
	if dag.IsPaused || !dag.IsActive || len(dag.Tags) != 2 || dag.VersionHash == nil {
		t.Errorf("dag: %+v", dag)
	}
	var dags gen.DAGCollection
	b.must(200, "GET", "/dags?tags=nightly&dag_id_pattern=ET", "viewer", nil).json(t, &dags)
	if dags.TotalEntries != 1 || dags.Dags[0].DagId != "etl" {
		t.Errorf("dags with tag nightly and pattern ET: %+v", dags)
	}

	// Given a run triggered with conf
	var run gen.DAGRun
	b.must(200, "POST", "/dags/etl/dagRuns", "op", map[string]any{"conf": map[string]any{"who": "ci"}}).json(t, &run)
	if run.State != "queued" || run.Conf["who"] != "ci" || run.RunType != "manual" {
		t.Fatalf("triggered run: %+v", run)
	}
	// When we wait for it
	lines := b.waitLines("etl", run.DagRunId, "interval=0.2&result=load")
	// Then the stream ends with success and the result
	last := lines[len(lines)-1]
	if last.State != runstate.RunSuccess || last.Results == nil || (*last.Results)["load"] != "loaded 42 for ci" {
		t.Fatalf("wait lines %+v (last results %v)", lines, last.Results)
	}
	for _, l := range lines[:len(lines)-1] {
		if runEnded(string(l.State)) {
			t.Errorf("a line before the last says %s", l.State)
		}
	}

	var tis gen.TaskInstanceCollection
	b.must(200, "GET", "/dags/etl/dagRuns/"+url.PathEscape(run.DagRunId)+"/taskInstances", "viewer", nil).json(t, &tis)
	if tis.TotalEntries != 3 {
		t.Fatalf("task instances: %+v", tis)
	}
	for _, ti := range tis.TaskInstances {
		if ti.State != "success" || ti.TryNumber != 1 || ti.Duration == nil {
			t.Errorf("task instance %+v", ti)
		}
	}

	// The log, two lines a page, continued by token until it is null.
	runPath := "/dags/etl/dagRuns/" + url.PathEscape(run.DagRunId)
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("the log does not end")
		}
		var lg gen.TaskLog
		b.must(200, "GET", runPath+"/taskInstances/extract/logs/1?limit=2&token="+token, "viewer", nil).json(t, &lg)
		for _, l := range lg.Content {
			got = append(got, l.Line)
		}
		if lg.ContinuationToken == nil {
			break
		}
		token = *lg.ContinuationToken
	}
	if all := strings.Join(got, "\n"); !strings.Contains(all, "line 1\nline 2\nline 3\nline 4\nline 5\n21") {
		t.Errorf("paged log:\n%s", all)
	}
	b.must(404, "GET", runPath+"/taskInstances/extract/logs/2", "viewer", nil)

	// XCom
	var xs gen.XComCollection
	b.must(200, "GET", runPath+"/taskInstances/transform/xcomEntries", "viewer", nil).json(t, &xs)
	if xs.TotalEntries != 1 || xs.XcomEntries[0].Key != "return_value" {
		t.Errorf("xcom entries: %+v", xs)
	}
	var x gen.XComEntry
	b.must(200, "GET", runPath+"/taskInstances/transform/xcomEntries/return_value", "viewer", nil).json(t, &x)
	if x.Value != "42" {
		t.Errorf("xcom value %#v, want \"42\"", x.Value)
	}
	b.must(404, "GET", runPath+"/taskInstances/transform/xcomEntries/nokey", "viewer", nil)

	// A live follow over SSE: open it while the try runs, read to its end.
	var slow gen.DAGRun
	b.must(200, "POST", "/dags/slow/dagRuns", "op", map[string]any{}).json(t, &slow)
	slowTI := "/dags/slow/dagRuns/" + url.PathEscape(slow.DagRunId) + "/taskInstances/ticks"
	b.WaitFor("ticks starts", 30*time.Second, func() bool {
		var ti gen.TaskInstance
		r := b.call("GET", slowTI, "viewer", nil)
		if r.Status == 404 { // the run has not started yet
			return false
		}
		r.json(t, &ti)
		return ti.TryNumber == 1
	})
	events := b.follow(slowTI + "/logs/1")
	var ticks []string
	for _, e := range events[:len(events)-1] {
		var l gen.LogLine
		if e.Event != "log" || json.Unmarshal([]byte(e.Data), &l) != nil {
			t.Fatalf("event %+v", e)
		}
		if strings.HasPrefix(l.Line, "tick") {
			ticks = append(ticks, l.Line)
		}
	}
	if end := events[len(events)-1]; end.Event != "end" || end.Data != `{"state": "success"}` {
		t.Errorf("last event %+v", end)
	}
	if strings.Join(ticks, ",") != "tick 1,tick 2,tick 3,tick 4" {
		t.Errorf("followed ticks %v", ticks)
	}

	// Clear transform with its downstream: a dry run by default changes nothing.
	clearBody := map[string]any{"dag_run_id": run.DagRunId, "task_ids": []string{"transform"}, "include_downstream": true}
	var cleared gen.TaskInstanceReferenceCollection
	b.must(200, "POST", "/dags/etl/clearTaskInstances", "op", clearBody).json(t, &cleared)
	if cleared.TotalEntries != 2 || b.TI("etl", run.DagRunId, "transform").State != "success" {
		t.Fatalf("dry run: %+v, transform %s", cleared, b.TI("etl", run.DagRunId, "transform").State)
	}
	clearBody["dry_run"] = false
	b.must(200, "POST", "/dags/etl/clearTaskInstances", "op", clearBody).json(t, &cleared)
	if ids := []string{cleared.TaskInstances[0].TaskId, cleared.TaskInstances[1].TaskId}; ids[0] != "transform" || ids[1] != "load" {
		t.Errorf("cleared %v", ids)
	}
	if last := b.waitLines("etl", run.DagRunId, "interval=1"); last[len(last)-1].State != "success" {
		t.Fatalf("after clear: %+v", last)
	}
	for task, try := range map[string]int{"extract": 1, "transform": 2, "load": 2} {
		if ti := b.TI("etl", run.DagRunId, task); ti.TryNumber != try || ti.State != "success" {
			t.Errorf("%s after clear: try %d %s, want try %d success", task, ti.TryNumber, ti.State, try)
		}
	}
	var tries gen.TaskInstanceTryCollection
	b.must(200, "GET", runPath+"/taskInstances/transform/tries", "viewer", nil).json(t, &tries)
	if tries.TotalEntries != 2 || tries.TaskInstances[0].State != "success" || tries.TaskInstances[1].State != "success" {
		t.Errorf("tries of transform: %+v", tries)
	}

	// The audit log has the changes, by whom and from where.
	var evs gen.EventLogCollection
	b.must(200, "GET", "/eventLogs?dag_id=etl", "viewer", nil).json(t, &evs)
	if evs.TotalEntries != 2 || evs.EventLogs[0].Event != "clear" || evs.EventLogs[1].Event != "trigger" ||
		evs.EventLogs[1].Owner != "op-user" || evs.EventLogs[1].Source != "127.0.0.1" {
		t.Errorf("event log: %+v", evs)
	}
}

// TestMarkRunFailed: a run marked failed fails its running task (its
// scheduler stops it) and skips the tasks still waiting.
func TestMarkRunFailed(t *testing.T) {
	b := setup(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	b.DAG("sleepy", `dag_id: sleepy
tasks:
  - {task_id: nap, operator: bash, bash_command: 'echo $$ > `+pidFile+`; sleep 60'}
  - {task_id: after, operator: bash, bash_command: 'true', upstream: [nap]}
`)
	b.Scheduler(nil)
	b.WaitFor("sleepy is synced", 30*time.Second, func() bool { return b.call("GET", "/dags/sleepy", "viewer", nil).Status == 200 })
	var run gen.DAGRun
	b.must(200, "POST", "/dags/sleepy/dagRuns", "op", map[string]any{"dag_run_id": "by_hand:1"}).json(t, &run)
	if run.DagRunId != "by_hand:1" {
		t.Fatalf("run id %q", run.DagRunId)
	}
	b.must(409, "POST", "/dags/sleepy/dagRuns", "op", map[string]any{"dag_run_id": "by_hand:1"})
	b.WaitFor("nap runs", 30*time.Second, func() bool { return b.States("sleepy", run.DagRunId)["nap"] == "running" })
	started := time.Now()
	runPath := "/dags/sleepy/dagRuns/" + url.PathEscape(run.DagRunId)
	b.must(200, "PATCH", runPath, "op", map[string]any{"state": "failed"}).json(t, &run)
	if run.State != "failed" || run.EndDate == nil {
		t.Fatalf("marked run: %+v", run)
	}
	if s := b.States("sleepy", run.DagRunId); s["nap"] != "failed" || s["after"] != "skipped" {
		t.Errorf("states after mark: %v", s)
	}
	pidText, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatal(err)
	}
	b.WaitFor("the scheduler stops nap's process", 30*time.Second, func() bool {
		return syscall.Kill(pid, 0) != nil
	})
	if time.Since(started) > 30*time.Second {
		t.Errorf("nap was stopped after %s", time.Since(started))
	}
	if got := b.Run("sleepy", run.DagRunId).State; got != "failed" {
		t.Errorf("run after the scheduler's check: %s", got)
	}
	var evs gen.EventLogCollection
	b.must(200, "GET", "/eventLogs?event=mark_run", "viewer", nil).json(t, &evs)
	if evs.TotalEntries != 1 || evs.EventLogs[0].Owner != "op-user" || (*evs.EventLogs[0].Extra)["state"] != "failed" {
		t.Errorf("event log: %+v", evs)
	}
}

// TestPauseStopsSchedule: a DAG paused through the API gets no scheduled
// run; unpaused, it does.
func TestPauseStopsSchedule(t *testing.T) {
	b := setup(t)
	b.DAG("ticker", `dag_id: ticker
schedule: "* * * * *"
start_date: 2026-01-01
catchup: false
tasks:
  - {task_id: t, operator: bash, bash_command: 'true'}
`)
	b.DAG("probe", `dag_id: probe
tasks:
  - {task_id: t, operator: bash, bash_command: 'true'}
`)
	// Registered as the scheduler's sync does, then paused before any scheduler runs.
	if err := b.Store.InTx(b.Ctx, func(q store.Q) error { return scheduler.RegisterDAG(b.Ctx, q, b.LoadDAG("ticker")) }); err != nil {
		t.Fatal(err)
	}
	var dag gen.DAG
	b.must(200, "PATCH", "/dags/ticker", "op", map[string]any{"is_paused": true}).json(t, &dag)
	if !dag.IsPaused {
		t.Fatal("not paused")
	}
	b.Scheduler(nil)
	// A manual run of another DAG finishing proves the scheduling loop ran
	// several times since it started.
	b.WaitFor("probe is synced", 30*time.Second, func() bool { return b.call("GET", "/dags/probe", "viewer", nil).Status == 200 })
	for i := 0; i < 3; i++ {
		var probe gen.DAGRun
		b.must(200, "POST", "/dags/probe/dagRuns", "op", map[string]any{}).json(t, &probe)
		if l := b.waitLines("probe", probe.DagRunId, "interval=1"); l[len(l)-1].State != "success" {
			t.Fatalf("probe: %+v", l)
		}
	}
	var runs gen.DAGRunCollection
	b.must(200, "GET", "/dags/ticker/dagRuns", "viewer", nil).json(t, &runs)
	if runs.TotalEntries != 0 {
		t.Fatalf("paused ticker has runs: %+v", runs)
	}
	b.must(200, "PATCH", "/dags/ticker", "op", map[string]any{"is_paused": false})
	b.WaitFor("unpaused ticker gets a scheduled run", 30*time.Second, func() bool {
		b.must(200, "GET", "/dags/~/dagRuns?order_by=-logical_date", "viewer", nil).json(t, &runs)
		for _, r := range runs.DagRuns {
			if r.DagId == "ticker" && r.RunType == "scheduled" {
				return true
			}
		}
		return false
	})
	var evs gen.EventLogCollection
	b.must(200, "GET", "/eventLogs?dag_id=ticker", "viewer", nil).json(t, &evs)
	if evs.TotalEntries != 2 || evs.EventLogs[0].Event != "unpause" || evs.EventLogs[1].Event != "pause" {
		t.Errorf("event log: %+v", evs)
	}
}

// TestMarkTaskInstanceSuccess: a running task marked success by hand is
// stopped by its scheduler, and its downstream runs as after a success.
func TestMarkTaskInstanceSuccess(t *testing.T) {
	b := setup(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	b.DAG("stuck", `dag_id: stuck
tasks:
  - {task_id: wait, operator: bash, bash_command: 'echo $$ > `+pidFile+`; sleep 60'}
  - {task_id: next, operator: bash, bash_command: 'echo went on', upstream: [wait]}
`)
	b.Scheduler(nil)
	b.WaitFor("stuck is synced", 30*time.Second, func() bool { return b.call("GET", "/dags/stuck", "viewer", nil).Status == 200 })
	var run gen.DAGRun
	b.must(200, "POST", "/dags/stuck/dagRuns", "op", map[string]any{}).json(t, &run)
	b.WaitFor("wait runs", 30*time.Second, func() bool { return b.States("stuck", run.DagRunId)["wait"] == "running" })
	tiPath := "/dags/stuck/dagRuns/" + url.PathEscape(run.DagRunId) + "/taskInstances/wait"
	var ti gen.TaskInstance
	b.must(200, "PATCH", tiPath, "op", map[string]any{"new_state": "success", "dry_run": true}).json(t, &ti)
	if ti.State != "running" {
		t.Fatalf("dry run changed the state: %+v", ti)
	}
	b.must(200, "PATCH", tiPath, "op", map[string]any{"new_state": "success"}).json(t, &ti)
	if ti.State != "success" || ti.EndDate == nil {
		t.Fatalf("marked: %+v", ti)
	}
	if l := b.waitLines("stuck", run.DagRunId, "interval=1"); l[len(l)-1].State != "success" {
		t.Fatalf("run after the mark: %+v", l)
	}
	if s := b.States("stuck", run.DagRunId); s["next"] != "success" {
		t.Errorf("states %v", s)
	}
	pidText, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidText)))
	b.WaitFor("the scheduler stops wait's process", 30*time.Second, func() bool { return syscall.Kill(pid, 0) != nil })
	var evs gen.EventLogCollection
	b.must(200, "GET", "/eventLogs?event=mark_task", "viewer", nil).json(t, &evs)
	if evs.TotalEntries != 1 || evs.EventLogs[0].TaskId == nil || *evs.EventLogs[0].TaskId != "wait" {
		t.Errorf("event log %+v", evs)
	}
}

// A DAG whose file was removed is listed inactive and cannot be triggered
// (409, naming the file; no run created), as Airflow answers for a deleted
// DAG; its file back, it can.
func TestRemovedDAGFileIsInactiveAndCannotBeTriggered(t *testing.T) {
	b := setup(t)
	b.DAG("gone", "dag_id: gone\ntasks:\n  - {task_id: t, operator: bash, bash_command: 'true'}\n")
	b.Scheduler(nil)
	b.WaitFor("gone is synced", 30*time.Second, func() bool { return b.call("GET", "/dags/gone", "viewer", nil).Status == 200 })
	path := filepath.Join(b.Dir, "gone.yaml")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var dag gen.DAG
	b.WaitFor("gone is inactive", 30*time.Second, func() bool {
		b.must(200, "GET", "/dags/gone", "viewer", nil).json(t, &dag)
		return !dag.IsActive
	})
	res := b.must(409, "POST", "/dags/gone/dagRuns", "op", map[string]any{})
	if !strings.Contains(string(res.Body), "inactive") || !strings.Contains(string(res.Body), path) {
		t.Errorf("409 body: %s", res.Body)
	}
	var runs gen.DAGRunCollection
	if b.must(200, "GET", "/dags/gone/dagRuns", "viewer", nil).json(t, &runs); runs.TotalEntries != 0 {
		t.Errorf("the refused trigger created a run: %+v", runs)
	}

	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	b.WaitFor("gone is active again", 30*time.Second, func() bool {
		b.must(200, "GET", "/dags/gone", "viewer", nil).json(t, &dag)
		return dag.IsActive
	})
	b.must(200, "POST", "/dags/gone/dagRuns", "op", map[string]any{})
}
