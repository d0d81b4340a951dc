package store_test

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// alertKeys lists a run's alerts as "task event notifier try", sorted.
func (b *testBundle) alertKeys(r store.Run) []string {
	b.t.Helper()
	as, err := b.st.ListAlerts(b.ctx, store.AlertFilter{DagID: r.DagID, RunID: r.RunID})
	if err != nil {
		b.t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, strings.Join([]string{a.TaskID, a.Event, a.Notifier, itoa(a.TryNumber)}, " "))
	}
	sort.Strings(out)
	return out
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func wantKeys(t *testing.T, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("alerts:\n got %q\nwant %q", got, want)
	}
}

// Every transition that ends a try writes the alerts its rules ask for in
// the same statement, keyed on the state reached; a repeated transition
// writes nothing; upstream_failed alerts nobody.
func TestTransitionsWriteAlerts(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r1", []string{"a", "b", "c", "d", "e"}, "a", "b", "c")
	rules := []store.AlertRule{
		{TaskID: "a", Event: "failure", Notifier: "ops"}, {TaskID: "a", Event: "failure", Notifier: "mail", Message: "{{ ti.task_id }}"},
		{TaskID: "a", Event: "execute", Notifier: "ops"},
		{TaskID: "b", Event: "retry", Notifier: "ops"}, {TaskID: "b", Event: "failure", Notifier: "ops"},
		{TaskID: "c", Event: "success", Notifier: "ops"},
		{TaskID: "d", Event: "failure", Notifier: "ops"}, // upstream_failed: no alert
		{TaskID: "e", Event: "skipped", Notifier: "ops"},
		{TaskID: "", Event: "failure", Notifier: "ops"}, {TaskID: "", Event: "success", Notifier: "ops"},
	}
	if err := b.st.SaveAlertRules(b.ctx, r.Hash, rules, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.st.SaveAlertRules(b.ctx, r.Hash, rules, nil); err != nil { // saving again is a no-op
		t.Fatal(err)
	}
	claimed := b.claim("w", 10)
	if len(claimed) != 3 {
		t.Fatalf("claimed %d", len(claimed))
	}
	wantKeys(t, b.alertKeys(r), "a execute ops 1")
	out := func(task, state, msg string) store.Outcome {
		ti := b.ti(r, task)
		return store.Outcome{ID: ti.ID, TryNumber: ti.TryNumber, Owner: "w", State: state, Error: msg, RetryAt: time.Now().Add(-time.Second)}
	}
	oa := out("a", runstate.Failed, "exit code 3")
	if !b.finish(oa) || b.finish(oa) { // a zombie's late report changes nothing
		t.Fatal("finish a: want applied once")
	}
	b.finish(out("b", runstate.UpForRetry, "boom"))
	b.finish(out("c", runstate.Success, ""))
	if _, err := b.st.MarkUpstreamFailed(b.ctx, r.PK, []string{"d"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.MarkSkipped(b.ctx, r.PK, []string{"e"}); err != nil {
		t.Fatal(err)
	}
	// b retried: queued, claimed (try 2), fails for good.
	if _, err := b.st.QueueDueRetries(b.ctx); err != nil {
		t.Fatal(err)
	}
	b.claim("w", 10)
	b.finish(out("b", runstate.Failed, "boom again"))
	if ok, err := b.st.FinishRun(b.ctx, r.PK, runstate.RunFailed); err != nil || !ok {
		t.Fatal(ok, err)
	}
	wantKeys(t, b.alertKeys(r), "a execute ops 1", "a failure ops 1", "a failure mail 1", "b retry ops 1",
		"b failure ops 2", "c success ops 1", "e skipped ops 0", " failure ops 0")

	as, err := b.st.ListAlerts(b.ctx, store.AlertFilter{RunID: r.RunID})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		var p map[string]any
		if err := json.Unmarshal(a.Payload, &p); err != nil {
			t.Fatal(err)
		}
		switch {
		case a.TaskID == "a" && a.Event == "failure":
			if p["error"] != "exit code 3" || p["state"] != "failed" {
				t.Errorf("a's failure payload %v", p)
			}
			if a.Notifier == "mail" && a.Message != "{{ ti.task_id }}" {
				t.Errorf("message %q", a.Message)
			}
		case a.TaskID == "" && a.Event == "failure":
			if p["error"] != "failed tasks: a, b" {
				t.Errorf("run failure payload %v", p)
			}
		}
		if a.State != "pending" || a.ID == "" {
			t.Errorf("alert %+v", a)
		}
	}
}

// A run timeout fails the run and its running tasks, and each fires its
// failure alert with the reason.
func TestRunTimeoutWritesAlerts(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r1", []string{"run", "wait"})
	b.force(r, "run", runstate.Running)
	rules := []store.AlertRule{{TaskID: "run", Event: "failure", Notifier: "ops"}, {TaskID: "wait", Event: "failure", Notifier: "ops"},
		{Event: "failure", Notifier: "ops"}}
	if err := b.st.SaveAlertRules(b.ctx, r.Hash, rules, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.FailForRunTimeout(b.ctx, r.PK); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, b.alertKeys(r), "run failure ops 1", " failure ops 0")
	as, _ := b.st.ListAlerts(b.ctx, store.AlertFilter{RunID: r.RunID})
	for _, a := range as {
		if !strings.Contains(string(a.Payload), "dagrun_timeout") {
			t.Errorf("%s %s payload %s lacks the reason", a.TaskID, a.Event, a.Payload)
		}
	}
}

// Deadlines fire once per run and notifier, for runs not finished by then,
// whenever the check runs after the moment.
func TestFireDeadlines(t *testing.T) {
	b := setup(t)
	late := b.runningRun("late", []string{"a"}) // logical date 2026-01-01: long past
	dl := &store.DeadlineRule{Reference: "logical_date", Interval: 2 * time.Hour, Notifiers: []string{"ops", "mail"}, Messages: []string{"", "late!"}}
	if err := b.st.SaveAlertRules(b.ctx, late.Hash, nil, dl); err != nil {
		t.Fatal(err)
	}
	// A run of another DAG whose deadline (queued_at + 1h) is ahead.
	early := b.runningRun("early", []string{"a"})
	if err := b.st.SaveAlertRules(b.ctx, early.Hash, nil, &store.DeadlineRule{Reference: "queued_at", Interval: time.Hour,
		Notifiers: []string{"ops"}, Messages: []string{""}}); err != nil {
		t.Fatal(err)
	}
	// A run finished before its fixed deadline (09:00 Berlin after 2026-01-01 00:00Z).
	done := b.runningRun("done", []string{"a"})
	if err := b.st.SaveAlertRules(b.ctx, done.Hash, nil, &store.DeadlineRule{Reference: "fixed", FixedTime: "09:00", FixedZone: "Europe/Berlin",
		Notifiers: []string{"ops"}, Messages: []string{""}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.Pool.Exec(b.ctx, `UPDATE dag_runs SET state = 'success', ended_at = '2026-01-01T07:59:00Z' WHERE id = $1`, done.PK); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		n, err := b.st.FireDeadlines(b.ctx, 24*time.Hour*365*20)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int64{2, 0}[i]; n != want {
			t.Errorf("check %d fired %d, want %d", i, n, want)
		}
	}
	wantKeys(t, b.alertKeys(late), " deadline mail 0", " deadline ops 0")
	wantKeys(t, b.alertKeys(early))
	wantKeys(t, b.alertKeys(done))
	// Finished after the fixed deadline (08:00Z): fires.
	if _, err := b.st.Pool.Exec(b.ctx, `UPDATE dag_runs SET ended_at = '2026-01-01T08:01:00Z' WHERE id = $1`, done.PK); err != nil {
		t.Fatal(err)
	}
	if n, err := b.st.FireDeadlines(b.ctx, 24*time.Hour*365*20); err != nil || n != 1 {
		t.Errorf("fired %d, %v; want 1", n, err)
	}
}

// Delivery claims skip locked rows, and every attempt is recorded.
func TestClaimAndRecordAlerts(t *testing.T) {
	b := setup(t)
	r := b.runningRun("r1", []string{"a"}, "a")
	if err := b.st.SaveAlertRules(b.ctx, r.Hash, []store.AlertRule{{TaskID: "a", Event: "execute", Notifier: "ops"}}, nil); err != nil {
		t.Fatal(err)
	}
	b.claim("w", 1)
	var first []store.Alert
	err := b.st.InTx(b.ctx, func(q store.Q) error {
		var err error
		if first, err = q.ClaimDueAlerts(b.ctx, 10, time.Minute); err != nil || len(first) != 1 || first[0].Attempts != 1 {
			t.Fatalf("claim: %+v %v", first, err)
		}
		other, err := b.st.ClaimDueAlerts(b.ctx, 10, time.Minute) // locked by this transaction: skipped
		if err != nil || len(other) != 0 {
			t.Fatalf("second claimer got %+v %v", other, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := b.st.ClaimDueAlerts(b.ctx, 10, time.Minute); len(again) != 0 {
		t.Fatalf("leased alert claimed again: %+v", again)
	}
	id := first[0].ID
	at := time.Now()
	if err := b.st.RecordAlertAttempt(b.ctx, id, store.AlertAttempt{Attempt: 1, At: at, StatusCode: 500, Error: "HTTP 500"}, false, at.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	second, _ := b.st.ClaimDueAlerts(b.ctx, 10, time.Minute)
	if len(second) != 1 || second[0].Attempts != 2 || second[0].LastError != "HTTP 500" {
		t.Fatalf("retry claim %+v", second)
	}
	if err := b.st.RecordAlertAttempt(b.ctx, id, store.AlertAttempt{Attempt: 2, At: at, StatusCode: 204}, true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	atts, err := b.st.AlertAttempts(b.ctx, id)
	if err != nil || len(atts) != 2 || atts[0].StatusCode != 500 || atts[1].StatusCode != 204 {
		t.Fatalf("attempts %+v %v", atts, err)
	}
	if d, _ := b.st.OutboxDepth(b.ctx); d != 0 {
		t.Errorf("outbox depth %d after the send", d)
	}
}
