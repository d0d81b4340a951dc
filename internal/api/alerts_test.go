package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/alerts"
	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/scheduler"
)

// A run's alerts with their delivery attempts, for viewers.
func TestDagRunAlerts(t *testing.T) {
	b := setup(t)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "got it") }))
	defer hook.Close()
	b.DAG("boom", "dag_id: boom\non_failure_callback: [ops]\ntasks: [{task_id: t, operator: bash, bash_command: 'exit 4', on_failure_callback: [ops]}]\n")
	b.Scheduler(func(c *scheduler.Config) {
		c.Alerts = &alerts.Deliverer{Senders: map[string]alerts.Sender{"ops": &alerts.Webhook{URL: hook.URL}},
			Policy: alerts.Policy{Backoff: time.Second, MaxBackoff: time.Second, GiveUpAfter: time.Minute, Timeout: 5 * time.Second},
			Poll:   100 * time.Millisecond}
	})
	runID := b.Trigger("boom", "")
	b.WaitRun("boom", runID, time.Minute)
	b.WaitFor("alerts sent", time.Minute, func() bool { n, err := b.Store.OutboxDepth(b.Ctx); return err == nil && n == 0 })
	var got gen.AlertCollection
	b.must(http.StatusOK, "GET", "/dags/boom/dagRuns/"+runID+"/alerts", "viewer", nil).json(t, &got)
	if got.TotalEntries != 2 || len(got.Alerts) != 2 {
		t.Fatalf("alerts %+v", got)
	}
	for _, a := range got.Alerts {
		if a.State != "sent" || a.Event != "failure" || len(a.DeliveryAttempts) != 1 {
			t.Errorf("alert %+v", a)
			continue
		}
		at := a.DeliveryAttempts[0]
		if at.StatusCode == nil || *at.StatusCode != 200 || at.Response == nil || *at.Response != "got it" {
			t.Errorf("attempt %+v", at)
		}
		if a.Payload["state"] != "failed" {
			t.Errorf("payload %v", a.Payload)
		}
	}
	b.must(http.StatusUnauthorized, "GET", "/dags/boom/dagRuns/"+runID+"/alerts", "", nil)
	b.must(http.StatusNotFound, "GET", "/dags/boom/dagRuns/nope/alerts", "viewer", nil)
}
