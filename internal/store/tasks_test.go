package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// QueueReady, MarkUpstreamFailed and MarkSkipped move only task instances
// still in none; a second decision from stale states changes nothing.
func TestDecisionTransitions(t *testing.T) {
	for _, tc := range []struct {
		name string
		move func(q store.Q, ctx context.Context, runPK int64, ids []string) ([]int64, error)
		to   string
	}{
		{"QueueReady", store.Q.QueueReady, runstate.Queued},
		{"MarkUpstreamFailed", store.Q.MarkUpstreamFailed, runstate.UpstreamFailed},
		{"MarkSkipped", store.Q.MarkSkipped, runstate.Skipped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			r := b.runningRun("r", []string{"a", "b", "busy"})
			b.force(r, "busy", runstate.Running)
			ids, err := tc.move(b.st.Q, b.ctx, r.PK, []string{"a", "busy"})
			if err != nil {
				t.Fatal(err)
			}
			if want := []int64{b.ti(r, "a").ID}; fmt.Sprint(ids) != fmt.Sprint(want) {
				t.Errorf("moved %v, want %v (only a)", ids, want)
			}
			wantStates(t, b.states(r), map[string]string{"a": tc.to, "b": runstate.None, "busy": runstate.Running})
			a := b.ti(r, "a")
			if (tc.to == runstate.Queued) != (a.QueuedAt != nil) || (tc.to != runstate.Queued) != (a.EndedAt != nil) {
				t.Errorf("a: queued_at %v ended_at %v", a.QueuedAt, a.EndedAt)
			}
			if ids, err := tc.move(b.st.Q, b.ctx, r.PK, []string{"a"}); err != nil || len(ids) != 0 {
				t.Errorf("second %s = %v, %v; want nothing moved", tc.name, ids, err)
			}
			if ids, err := tc.move(b.st.Q, b.ctx, r.PK, nil); err != nil || len(ids) != 0 {
				t.Errorf("%s of no tasks = %v, %v", tc.name, ids, err)
			}
			hist, err := b.st.StateHistory(b.ctx, a.ID)
			if err != nil || len(hist) != 1 || hist[0].State != tc.to {
				t.Errorf("history of a = %+v, %v; want one entry %s", hist, err, tc.to)
			}
		})
	}
}

// Queuing wakes the workers at commit, and a transition that moved nothing
// sends nothing.
func TestQueueReadyNotifies(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r", []string{"a"})
	next := b.listen(store.ChannelTaskQueued)
	queue := func() {
		err := b.st.InTx(b.ctx, func(q store.Q) error {
			_, err := q.QueueReady(b.ctx, r.PK, []string{"a"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	queue()
	if p := next(); p != "" {
		t.Errorf("payload %q", p)
	}
	queue() // a is queued already: no wake-up
	if err := b.st.Notify(b.ctx, store.ChannelTaskQueued, "marker"); err != nil {
		t.Fatal(err)
	}
	if p := next(); p != "marker" {
		t.Errorf("a QueueReady that moved nothing notified (got %q before the marker)", p)
	}
}

// A try's outcome applies once, for the owner and try that claimed it: a
// late report (a zombie's worker, or a duplicate) changes nothing and
// stores no XCom.
func TestFinishTaskGuard(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r", []string{"a"}, "a")
	c := b.claim("w1", 10)
	if len(c) != 1 || c[0].TryNumber != 1 || c[0].OwnerID != "w1" || c[0].State != runstate.Running {
		t.Fatalf("claimed %+v", c)
	}
	out := func(owner string, try int, state, value string) store.Outcome {
		return store.Outcome{ID: c[0].ID, TryNumber: try, Owner: owner, State: state, Error: "e",
			XCom:  map[string]json.RawMessage{"return_value": json.RawMessage(value)},
			DagID: r.DagID, RunID: r.RunID, TaskID: "a", MapIndex: -1}
	}
	if b.finish(out("w2", 1, runstate.Success, `"other owner"`)) {
		t.Error("another owner's outcome applied")
	}
	if b.finish(out("w1", 2, runstate.Success, `"other try"`)) {
		t.Error("another try's outcome applied")
	}
	if _, ok, _ := b.st.XCom(b.ctx, r.DagID, r.RunID, "a", "return_value"); ok {
		t.Error("a refused outcome stored its XCom")
	}
	if !b.finish(out("w1", 1, runstate.Success, `[1, 2]`)) {
		t.Fatal("the owner's outcome did not apply")
	}
	if b.finish(out("w1", 1, runstate.Failed, `"late"`)) {
		t.Error("a duplicate report applied")
	}
	ti := b.ti(r, "a")
	if ti.State != runstate.Success || ti.EndedAt == nil || ti.Error != "e" {
		t.Errorf("a: state %s ended %v error %q", ti.State, ti.EndedAt, ti.Error)
	}
	if v, ok, err := b.st.XCom(b.ctx, r.DagID, r.RunID, "a", "return_value"); err != nil || !ok || string(v) != "[1, 2]" {
		t.Errorf("XCom = %s, %v, %v; want [1, 2]", v, ok, err)
	}
	err := b.st.InTx(b.ctx, func(q store.Q) error {
		_, err := q.FinishTask(b.ctx, store.Outcome{ID: c[0].ID, TryNumber: 1, Owner: "w1", State: runstate.Queued})
		return err
	})
	if err == nil {
		t.Error("an outcome in state queued: want an error")
	}
}

// XComs: stored with a success only, read back by key and by the template
// puller, replaced on a later success, deleted by a clear.
func TestXComPushGetClear(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r", []string{"a", "f", "keep"}, "a", "f", "keep")
	byTask := map[string]store.Claimed{}
	for _, c := range b.claim("w", 10) {
		byTask[c.TaskID] = c
	}
	finish := func(task, state string, xcom map[string]json.RawMessage) {
		t.Helper()
		c := byTask[task]
		if !b.finish(store.Outcome{ID: c.ID, TryNumber: c.TryNumber, Owner: "w", State: state, XCom: xcom,
			DagID: r.DagID, RunID: r.RunID, TaskID: task, MapIndex: -1}) {
			t.Fatalf("finish %s not applied", task)
		}
	}
	finish("a", runstate.Success, map[string]json.RawMessage{"return_value": json.RawMessage(`{"n": 1}`), "other": json.RawMessage(`2`)})
	finish("f", runstate.Failed, map[string]json.RawMessage{"return_value": json.RawMessage(`"no"`)})
	finish("keep", runstate.Success, map[string]json.RawMessage{"return_value": json.RawMessage(`"kept"`)})

	for _, tc := range []struct {
		task, key, want string
		found           bool
	}{
		{"a", "return_value", `{"n": 1}`, true},
		{"a", "other", `2`, true},
		{"a", "missing", ``, false},
		{"f", "return_value", ``, false}, // a failed try pushes nothing
		{"keep", "return_value", `"kept"`, true},
	} {
		v, ok, err := b.st.XCom(b.ctx, r.DagID, r.RunID, tc.task, tc.key)
		if err != nil || ok != tc.found || string(v) != tc.want {
			t.Errorf("XCom(%s, %s) = %s, %v, %v; want %s, %v", tc.task, tc.key, v, ok, err, tc.want, tc.found)
		}
	}
	v, ok, err := b.st.XComPuller(r.DagID, r.RunID).Pull(b.ctx, "a", "other")
	if raw, isRaw := v.(json.RawMessage); err != nil || !ok || !isRaw || string(raw) != "2" {
		t.Errorf("Pull(a, other) = %#v, %v, %v; want raw JSON 2", v, ok, err)
	}
	if _, ok, err := b.st.XComPuller(r.DagID, "another-run").Pull(b.ctx, "a", "other"); err != nil || ok {
		t.Errorf("Pull from another run found a value (%v)", err)
	}

	n, err := b.st.ClearTasks(b.ctx, r, []string{"a"})
	if err != nil || n != 1 {
		t.Fatalf("ClearTasks = %d, %v", n, err)
	}
	if _, ok, _ := b.st.XCom(b.ctx, r.DagID, r.RunID, "a", "return_value"); ok {
		t.Error("cleared task's XCom still there")
	}
	if _, ok, _ := b.st.XCom(b.ctx, r.DagID, r.RunID, "keep", "return_value"); !ok {
		t.Error("XCom of a task not cleared is gone")
	}
	ti := b.ti(r, "a")
	if ti.State != runstate.None || ti.OwnerID != "" || ti.StartedAt != nil || ti.EndedAt != nil || ti.MaxTries != 1 {
		t.Errorf("cleared a: state %s owner %q started %v ended %v max_tries %d; want none, no owner, no start or end (podflow tasks would show a stale one), one more try",
			ti.State, ti.OwnerID, ti.StartedAt, ti.EndedAt, ti.MaxTries)
	}
	keys, err := b.st.XComKeys(b.ctx, r.DagID, r.RunID, "keep")
	if err != nil || len(keys) != 1 || keys[0] != "return_value" {
		t.Errorf("XComKeys(keep) = %v, %v", keys, err)
	}

	// The second try's success replaces nothing stale: only its own values.
	if _, err := b.st.QueueReady(b.ctx, r.PK, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	c := b.claim("w", 10)
	if len(c) != 1 || c[0].TryNumber != 2 {
		t.Fatalf("second claim %+v", c)
	}
	byTask["a"] = c[0]
	finish("a", runstate.Success, map[string]json.RawMessage{"return_value": json.RawMessage(`"second"`)})
	if v, _, _ := b.st.XCom(b.ctx, r.DagID, r.RunID, "a", "return_value"); string(v) != `"second"` {
		t.Errorf("after the second try: %s", v)
	}
	if _, ok, _ := b.st.XCom(b.ctx, r.DagID, r.RunID, "a", "other"); ok {
		t.Error("the first try's other key survived the clear")
	}
}

// up_for_retry → queued only once the delay has passed, and once.
func TestQueueDueRetries(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r", []string{"due", "later"}, "due", "later")
	for _, c := range b.claim("w", 10) {
		at := time.Now().Add(-time.Second)
		if c.TaskID == "later" {
			at = time.Now().Add(time.Hour)
		}
		if !b.finish(store.Outcome{ID: c.ID, TryNumber: c.TryNumber, Owner: "w", State: runstate.UpForRetry, RetryAt: at}) {
			t.Fatal("retry outcome not applied")
		}
	}
	if n, err := b.st.QueueDueRetries(b.ctx); err != nil || n != 1 {
		t.Fatalf("QueueDueRetries = %d, %v; want 1", n, err)
	}
	if n, err := b.st.QueueDueRetries(b.ctx); err != nil || n != 0 {
		t.Fatalf("second QueueDueRetries = %d, %v; want 0", n, err)
	}
	wantStates(t, b.states(r), map[string]string{"due": runstate.Queued, "later": runstate.UpForRetry})
	c := b.claim("w", 10)
	if len(c) != 1 || c[0].TaskID != "due" || c[0].TryNumber != 2 {
		t.Errorf("retry claimed as %+v; want due, try 2", c)
	}
}

// deferred → queued (by its trigger's event, in one step), then claimed
// with the same try number; a second delivery changes nothing.
func TestDeferResumeQueue(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r", []string{"a"}, "a")
	c := b.claim("w", 1)[0]
	o := store.Outcome{ID: c.ID, TryNumber: 1, Owner: "w", State: runstate.Deferred,
		Trigger: &store.NewTrigger{Kind: "k", Args: json.RawMessage(`{}`), Method: "resume"}}
	if !b.finish(o) {
		t.Fatal("deferral not applied")
	}
	if n, err := b.st.QueueResumed(b.ctx); err != nil || n != 0 {
		t.Fatalf("QueueResumed of a deferred task = %d, %v; want 0", n, err)
	}
	var trig []store.Trigger
	err := b.st.InTx(b.ctx, func(q store.Q) error {
		var err error
		trig, err = q.ClaimTriggers(b.ctx, "triggerer", 10, time.Minute)
		return err
	})
	if err != nil || len(trig) != 1 {
		t.Fatalf("claim triggers: %v, %v", trig, err)
	}
	if ok, err := b.st.FireTrigger(b.ctx, trig[0].ID, json.RawMessage(`{"status": "success"}`)); err != nil || !ok {
		t.Fatalf("FireTrigger = %v, %v", ok, err)
	}
	wantStates(t, b.states(r), map[string]string{"a": runstate.Queued})
	if ok, err := b.st.FireTrigger(b.ctx, trig[0].ID, json.RawMessage(`{"status": "failed"}`)); err != nil || ok {
		t.Fatalf("second FireTrigger = %v, %v; want false", ok, err)
	}
	if n, err := b.st.QueueResumed(b.ctx); err != nil || n != 0 {
		t.Fatalf("QueueResumed after FireTrigger = %d, %v; want 0 (already queued)", n, err)
	}
	again := b.claim("w2", 1)
	if len(again) != 1 || again[0].TryNumber != 1 || again[0].NextMethod != "resume" || string(again[0].NextEvent) != `{"status": "success"}` {
		t.Errorf("resumed claim %+v; want try 1 with method resume and the event", again)
	}
	wantStates(t, b.states(r), map[string]string{"a": runstate.Running})
}

// A triggerer quiet for a while, but not yet past the threshold, is listed
// with its triggers and last beat; one past it, a live one and self are not.
func TestSilentTriggerOwners(t *testing.T) {
	b := setup(t)
	b.runningRun("r", []string{"a", "b", "c"}, "a", "b", "c")
	claimed := b.claim("w", 3)
	owners := []string{"quiet", "gone", "alive"}
	err := b.st.InTx(b.ctx, func(q store.Q) error {
		for i, c := range claimed {
			o := store.Outcome{ID: c.ID, TryNumber: 1, Owner: "w", State: runstate.Deferred,
				Trigger: &store.NewTrigger{Kind: "k", Args: json.RawMessage(`{}`), Method: "resume"}}
			if ok, err := q.FinishTask(b.ctx, o); err != nil || !ok {
				return fmt.Errorf("defer %s: %v %v", c.TaskID, ok, err)
			}
			if err := q.Heartbeat(b.ctx, owners[i], "triggerer", "h", 1); err != nil {
				return err
			}
			if _, err := q.ClaimTriggers(b.ctx, owners[i], 1, time.Hour); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for owner, age := range map[string]string{"quiet": "10 seconds", "gone": "5 minutes"} {
		if _, err := b.st.Pool.Exec(b.ctx, `UPDATE heartbeats SET heartbeat_at = now() - $2::interval WHERE id = $1`, owner, age); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.st.SilentTriggerOwners(b.ctx, "me", 5*time.Second, time.Minute)
	if err != nil || len(got) != 1 || got[0].Owner != "quiet" || got[0].Triggers != 1 || time.Since(got[0].LastBeat) < 9*time.Second {
		t.Fatalf("SilentTriggerOwners = %+v, %v; want quiet with 1 trigger, 10 s silent", got, err)
	}
	if got, _ := b.st.SilentTriggerOwners(b.ctx, "quiet", 5*time.Second, time.Minute); len(got) != 0 {
		t.Errorf("self listed: %+v", got)
	}
}

// A row written before migration 0010 keeps its jsonb history; later
// transitions go to the compact text, and StateHistory reads both in order.
func TestStateHistoryBeforeAndAfterCompact(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r", []string{"a"})
	a := b.ti(r, "a")
	old := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	if _, err := b.st.Pool.Exec(b.ctx, `UPDATE task_instances SET history = jsonb_build_array(jsonb_build_object('state', 'queued', 'try', 0, 'at', $2::timestamptz)),
		transitions = '' WHERE id = $1`, a.ID, old); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.QueueReady(b.ctx, r.PK, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := b.st.Pool.Exec(b.ctx, `UPDATE task_instances SET state = 'none' WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.QueueReady(b.ctx, r.PK, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	hist, err := b.st.StateHistory(b.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].State != runstate.Queued || !hist[0].At.Equal(old) || hist[1].State != runstate.Queued || hist[2].State != runstate.Queued {
		t.Fatalf("history = %+v; want the jsonb entry at %s, then two compact ones", hist, old)
	}
	if hist[2].At.Before(before.Add(-time.Second)) || hist[2].At.After(time.Now().Add(time.Second)) || hist[1].At.After(hist[2].At) {
		t.Errorf("compact entries at %s, %s: want in order, around %s", hist[1].At, hist[2].At, before)
	}
	if h, err := b.st.StateHistory(b.ctx, -1); err != nil || h != nil {
		t.Errorf("history of no task instance = %v, %v", h, err)
	}
}
