package api

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/api/gen"
	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
)

// TestPodEvents: the events of a task's pod come from the server's
// Kubernetes reader for the namespace and name the task instance recorded
// (a narrow stand-in here; kube.PodEvents is tested on the real cluster);
// a task without a pod is 404, a server without Kubernetes access 503.
func TestPodEvents(t *testing.T) {
	var asked []string
	fail := false
	b := setupOptions(t, func(*flowtest.Bundle) auth.Authenticator { return tokenAuth{} }, func(_ *flowtest.Bundle, o *Options) {
		o.PodEvents = func(_ context.Context, ns, name string) ([]kube.PodEvent, error) {
			asked = append(asked, ns+"/"+name)
			if fail {
				return nil, errors.New(`events is forbidden: User "x" cannot list resource "events"`)
			}
			return []kube.PodEvent{{Time: time.Unix(1700000000, 0).UTC(), Type: "Warning", Reason: "FailedScheduling", Message: "0/1 nodes are available", Count: 2}}, nil
		}
	})
	b.DAG("pe", "dag_id: pe\ntasks:\n  - {task_id: t, operator: bash, bash_command: 'true'}\n")
	b.Scheduler(nil)
	b.WaitFor("pe is synced", 30*time.Second, func() bool { return b.call("GET", "/dags/pe", "viewer", nil).Status == 200 })
	var run gen.DAGRun
	b.must(200, "POST", "/dags/pe/dagRuns", "op", map[string]any{}).json(t, &run)
	b.waitLines("pe", run.DagRunId, "interval=1")
	path := "/dags/pe/dagRuns/" + run.DagRunId + "/taskInstances/t/podEvents"

	// A bash task has no pod.
	if r := b.must(404, "GET", path, "viewer", nil); !strings.Contains(string(r.Body), "has no pod") {
		t.Errorf("404 says %s", r.Body)
	}
	if _, err := b.Store.Pool.Exec(b.Ctx, `UPDATE task_instances SET external_ns = 'jobs', external_name = 'pe-t-abc' WHERE dag_id = 'pe'`); err != nil {
		t.Fatal(err)
	}
	var got gen.PodEventCollection
	b.must(200, "GET", path, "viewer", nil).json(t, &got)
	if got.Namespace != "jobs" || got.PodName != "pe-t-abc" || len(got.Events) != 1 || got.Events[0].Reason != "FailedScheduling" || got.Events[0].Count != 2 {
		t.Errorf("pod events %+v", got)
	}
	if len(asked) != 1 || asked[0] != "jobs/pe-t-abc" {
		t.Errorf("the reader was asked for %v", asked)
	}
	fail = true
	if r := b.must(503, "GET", path, "viewer", nil); !strings.Contains(string(r.Body), "cannot list resource") {
		t.Errorf("503 says %s", r.Body)
	}
	b.must(404, "GET", "/dags/pe/dagRuns/"+run.DagRunId+"/taskInstances/nope/podEvents", "viewer", nil)
}

// TestPodEventsWithoutKubernetes: a server built without a reader says so.
func TestPodEventsWithoutKubernetes(t *testing.T) {
	b := setup(t)
	b.DAG("pe", "dag_id: pe\ntasks:\n  - {task_id: t, operator: bash, bash_command: 'true'}\n")
	b.Scheduler(nil)
	b.WaitFor("pe is synced", 30*time.Second, func() bool { return b.call("GET", "/dags/pe", "viewer", nil).Status == 200 })
	var run gen.DAGRun
	b.must(200, "POST", "/dags/pe/dagRuns", "op", map[string]any{}).json(t, &run)
	b.waitLines("pe", run.DagRunId, "interval=1")
	if _, err := b.Store.Pool.Exec(b.Ctx, `UPDATE task_instances SET external_ns = 'jobs', external_name = 'pe-t-abc' WHERE dag_id = 'pe'`); err != nil {
		t.Fatal(err)
	}
	if r := b.must(503, "GET", "/dags/pe/dagRuns/"+run.DagRunId+"/taskInstances/t/podEvents", "viewer", nil); !strings.Contains(string(r.Body), "no Kubernetes access") {
		t.Errorf("503 says %s", r.Body)
	}
}
