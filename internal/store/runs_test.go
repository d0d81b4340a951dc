package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// Two schedulers creating the same run: one creates it, the other is told
// it exists; the first run's row is untouched.
func TestCreateRunOnce(t *testing.T) {
	b := setup(t)
	b.dag("d", "h1")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	nr := store.NewRun{DagID: "d", RunID: "r1", Hash: "h1", RunType: "scheduled", LogicalDate: at, DataIntervalStart: at, DataIntervalEnd: at,
		Conf: []byte(`{"a": 1}`)}
	pk, created, err := b.st.CreateRun(b.ctx, nr)
	if err != nil || !created || pk == 0 {
		t.Fatalf("first CreateRun = %d, %v, %v", pk, created, err)
	}
	nr.Conf = []byte(`{"a": 2}`)
	pk2, created, err := b.st.CreateRun(b.ctx, nr)
	if err != nil || created || pk2 != 0 {
		t.Fatalf("second CreateRun = %d, %v, %v; want not created", pk2, created, err)
	}
	r := b.run("d", "r1")
	if r.PK != pk || r.State != runstate.RunQueued || string(r.Conf) != `{"a": 1}` {
		t.Errorf("run = pk %d state %s conf %s; want pk %d queued conf a=1", r.PK, r.State, r.Conf, pk)
	}
	nr.RunID, nr.Conf = "r2", nil
	if _, created, err := b.st.CreateRun(b.ctx, nr); err != nil || !created {
		t.Fatalf("another run id: created %v, %v", created, err)
	}
	if got := string(b.run("d", "r2").Conf); got != "{}" {
		t.Errorf("nil conf stored as %s, want {}", got)
	}
}

// Each run transition applies once, from its expected state only.
func TestRunTransitions(t *testing.T) {
	b := setup(t)
	b.dag("d", "h1")
	r := b.queuedRun("d", "h1", "r1")

	if ok, err := b.st.FinishRun(b.ctx, r.PK, runstate.RunSuccess); err != nil || ok {
		t.Fatalf("FinishRun of a queued run = %v, %v; want not applied", ok, err)
	}
	if ok, err := b.st.ReopenRun(b.ctx, r.PK); err != nil || ok {
		t.Fatalf("ReopenRun of a queued run = %v, %v; want not applied", ok, err)
	}
	if ok, err := b.st.StartRun(b.ctx, r.PK); err != nil || !ok {
		t.Fatalf("StartRun = %v, %v", ok, err)
	}
	started := b.run("d", "r1").StartedAt
	if ok, err := b.st.StartRun(b.ctx, r.PK); err != nil || ok {
		t.Fatalf("second StartRun = %v, %v; want not applied", ok, err)
	}
	if _, err := b.st.FinishRun(b.ctx, r.PK, runstate.Running); err == nil {
		t.Fatal("FinishRun to running: want an error")
	}
	if got := b.run("d", "r1"); got.State != runstate.RunRunning || got.StartedAt == nil || !got.StartedAt.Equal(*started) {
		t.Fatalf("after refused transitions: %s started %v; want running since %v", got.State, got.StartedAt, started)
	}
	if ok, err := b.st.FinishRun(b.ctx, r.PK, runstate.RunSuccess); err != nil || !ok {
		t.Fatalf("FinishRun = %v, %v", ok, err)
	}
	if ok, err := b.st.FinishRun(b.ctx, r.PK, runstate.RunFailed); err != nil || ok {
		t.Fatalf("late FinishRun(failed) = %v, %v; want not applied", ok, err)
	}
	if got := b.run("d", "r1"); got.State != runstate.RunSuccess || got.EndedAt == nil {
		t.Fatalf("finished run: %s ended %v", got.State, got.EndedAt)
	}
	if ok, err := b.st.ReopenRun(b.ctx, r.PK); err != nil || !ok {
		t.Fatalf("ReopenRun = %v, %v", ok, err)
	}
	if ok, err := b.st.ReopenRun(b.ctx, r.PK); err != nil || ok {
		t.Fatalf("second ReopenRun = %v, %v; want not applied", ok, err)
	}
	if got := b.run("d", "r1"); got.State != runstate.RunRunning || got.EndedAt != nil || !got.StartedAt.Equal(*started) {
		t.Errorf("reopened run: %s ended %v started %v; want running, no end, started as before", got.State, got.EndedAt, got.StartedAt)
	}
}

// A timed-out run fails with its running and deferred tasks; waiting ones
// are skipped, finished ones kept. A second sweep changes nothing.
func TestFailForRunTimeout(t *testing.T) {
	b := setup(t)
	tasks := []string{"run", "def", "none", "sch", "que", "retry", "ok", "bad"}
	r := b.runningRun("r1", tasks)
	for id, s := range map[string]string{"run": runstate.Running, "def": runstate.Deferred, "sch": runstate.Scheduled,
		"que": runstate.Queued, "retry": runstate.UpForRetry, "ok": runstate.Success, "bad": runstate.UpstreamFailed} {
		b.force(r, id, s)
	}
	stopped := b.listen(store.ChannelTaskStopped)
	res, err := b.st.FailForRunTimeout(b.ctx, r.PK)
	if err != nil {
		t.Fatal(err)
	}
	if p := stopped(); p != "" { // the running task's worker stops it now
		t.Errorf("task-stopped payload %q", p)
	}
	if res != (store.RunTimeout{Finished: true, Failed: 2, Skipped: 4}) {
		t.Errorf("FailForRunTimeout = %+v; want finished, 2 failed, 4 skipped", res)
	}
	want := map[string]string{"run": runstate.Failed, "def": runstate.Failed, "none": runstate.Skipped, "sch": runstate.Skipped,
		"que": runstate.Skipped, "retry": runstate.Skipped, "ok": runstate.Success, "bad": runstate.UpstreamFailed}
	wantStates(t, b.states(r), want)
	if got := b.run(r.DagID, r.RunID); got.State != runstate.RunFailed {
		t.Errorf("run state %s, want failed", got.State)
	}

	// A second actor (another scheduler's sweep) changes nothing, even
	// with a task that someone made runnable in between.
	b.force(r, "none", runstate.Queued)
	res, err = b.st.FailForRunTimeout(b.ctx, r.PK)
	if err != nil || res != (store.RunTimeout{}) {
		t.Fatalf("second FailForRunTimeout = %+v, %v; want nothing", res, err)
	}
	want["none"] = runstate.Queued
	wantStates(t, b.states(r), want)
	if err := b.st.Notify(b.ctx, store.ChannelTaskStopped, "marker"); err != nil {
		t.Fatal(err)
	}
	if p := stopped(); p != "marker" {
		t.Errorf("a FailForRunTimeout that failed nothing notified (got %q before the marker)", p)
	}
}

// Retention deletes finished runs that ended before the cut-off with their
// task instances, logs and XComs, and then the DAG versions nothing uses.
func TestDeleteFinishedRunsBeforeAndUnusedVersions(t *testing.T) {
	b := setup(t)
	b.dag("d", "v1")
	old := b.queuedRun("d", "v1", "old")
	oldRunning := b.queuedRun("d", "v1", "old-running")
	b.dag("d", "v2") // v1 is no longer current, but runs pin it
	recent := b.queuedRun("d", "v2", "recent")
	b.dag("d", "v3") // current, no run
	b.dag("other", "v4")
	b.dag("other", "v5") // v4: no run, not current

	for _, r := range []store.Run{old, oldRunning, recent} {
		if ok, err := b.st.StartRun(b.ctx, r.PK); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if err := b.st.InsertTaskInstances(b.ctx, r, []store.TaskSpec{{TaskID: "t", Pool: "default_pool", Queued: true}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		c := b.claim("w", 1)
		if len(c) != 1 {
			t.Fatalf("claimed %d", len(c))
		}
		if err := b.st.AppendLogs(b.ctx, []store.LogLine{{TIID: c[0].ID, TryNumber: 1, At: time.Now(), Source: "task", Line: "hi"}}); err != nil {
			t.Fatal(err)
		}
		out := store.Outcome{ID: c[0].ID, TryNumber: c[0].TryNumber, Owner: "w", State: runstate.Success,
			XCom: map[string]json.RawMessage{"return_value": json.RawMessage(`"` + c[0].RunID + `"`)}, DagID: c[0].DagID, RunID: c[0].RunID, TaskID: "t", MapIndex: -1}
		if !b.finish(out) {
			t.Fatal("finish not applied")
		}
	}
	for _, r := range []store.Run{old, recent} {
		if ok, err := b.st.FinishRun(b.ctx, r.PK, runstate.RunSuccess); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	oldTI := b.ti(old, "t")
	// "old" ended two days ago; "old-running" started then and still runs.
	if _, err := b.st.Pool.Exec(b.ctx, `UPDATE dag_runs SET ended_at = now() - interval '2 days' WHERE id = $1`, old.PK); err != nil {
		t.Fatal(err)
	}

	n, err := b.st.DeleteFinishedRunsBefore(b.ctx, time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteFinishedRunsBefore = %d, %v; want 1", n, err)
	}
	if _, err := b.st.Run(b.ctx, "d", "old"); err == nil {
		t.Error("old finished run still there")
	}
	if _, err := b.st.TaskInstanceByID(b.ctx, oldTI.ID); err == nil {
		t.Error("old run's task instance still there")
	}
	if lines, err := b.st.Logs(b.ctx, oldTI.ID, 1, 0); err != nil || len(lines) != 0 {
		t.Errorf("old run's log: %v, %v", lines, err)
	}
	if _, ok, err := b.st.XCom(b.ctx, "d", "old", "t", "return_value"); err != nil || ok {
		t.Errorf("old run's XCom still there (%v)", err)
	}
	for _, id := range []string{"old-running", "recent"} {
		if _, ok, err := b.st.XCom(b.ctx, "d", id, "t", "return_value"); err != nil || !ok {
			t.Errorf("run %s's XCom gone (%v)", id, err)
		}
	}
	if n, err := b.st.DeleteFinishedRunsBefore(b.ctx, time.Now().Add(-24*time.Hour)); err != nil || n != 0 {
		t.Errorf("second DeleteFinishedRunsBefore = %d, %v; want 0", n, err)
	}

	n, err = b.st.DeleteUnusedDagVersions(b.ctx)
	if err != nil || n != 1 {
		t.Fatalf("DeleteUnusedDagVersions = %d, %v; want 1 (v4)", n, err)
	}
	if _, _, err := b.st.DagSource(b.ctx, "v4"); err == nil {
		t.Error("v4 (no run, not current) kept")
	}
	for _, h := range []string{"v1", "v2", "v3", "v5"} {
		if _, _, err := b.st.DagSource(b.ctx, h); err != nil {
			t.Errorf("version %s (pinned by a run or current) deleted: %v", h, err)
		}
	}
}
