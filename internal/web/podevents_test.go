package web_test

import (
	"context"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
)

// TestPodEventsOnTaskPage: the task page of a pod task shows its pod's
// events, read by the webserver from the real cluster its KUBECONFIG names.
// The pod is recorded on a bash task instance (so the test needs no image);
// the event is written as the kube-scheduler would.
func TestPodEventsOnTaskPage(t *testing.T) {
	t.Setenv("KUBECONFIG", kubetest.Kubeconfig(t))
	ns, cs := kubetest.Namespace(t), kubetest.Client(t)
	_, err := cs.CoreV1().Events(ns).Create(context.Background(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "pe-1", Namespace: ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "pe-t-abc"},
		Reason:         "FailedScheduling", Type: corev1.EventTypeWarning, Count: 4,
		Message:       "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
		LastTimestamp: metav1.Now(), Source: corev1.EventSource{Component: "default-scheduler"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := flowtest.New(t, operators.NewRegistry(bash.New()))
	b.DAG("pe", "dag_id: pe\ntasks:\n  - {task_id: t, operator: bash, bash_command: 'true'}\n")
	b.Scheduler(nil)
	base, c := viewerSession(t, b)
	runID := b.Trigger("pe", "")
	if got := b.WaitRun("pe", runID, time.Minute); got != "success" {
		t.Fatalf("run %s", got)
	}
	if _, err := b.Store.Pool.Exec(b.Ctx, `UPDATE task_instances SET external_ns = $1, external_name = 'pe-t-abc' WHERE dag_id = 'pe'`, ns); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(base + "/dags/pe/runs/" + url.PathEscape(runID) + "/tasks/t")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if resp.StatusCode != 200 {
		t.Fatalf("task page: %d\n%s", resp.StatusCode, page)
	}
	for _, want := range []string{`id="pod-events"`, "FailedScheduling", "didn&#39;t match Pod&#39;s node affinity/selector", `<td>4</td>`} {
		if !strings.Contains(page, want) {
			t.Errorf("task page lacks %q:\n%s", want, page[strings.Index(page, "<main"):])
		}
	}
}
