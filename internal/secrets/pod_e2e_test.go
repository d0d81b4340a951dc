package secrets_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/secrets"
	"github.com/podflow/podflow/operators/builtin"
)

func TestMain(m *testing.M) { os.Exit(flowtest.Main(m, nil, kubetest.Stop)) }

// Given a Kubernetes Secret the secrets backend reads, when a pod task
// prints its value — from a secretKeyRef env var and from a template —
// raw, base64- and URL-encoded, then the task's log in Postgres shows ***.
func TestPodPrintingASecretIsMasked(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on a Kubernetes cluster (not in -short mode)")
	}
	kubeconfig, ns, client := kubetest.Kubeconfig(t), kubetest.Namespace(t), kubetest.Client(t)
	const value = "pod-secret-42/xyz+"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := client.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Labels: map[string]string{"podflow.dev/secrets": "true"},
			Annotations: map[string]string{secrets.AnnotationVariable: "db_password"}},
		Data: map[string][]byte{"value": []byte(value)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := secrets.NewMasker(nil)
	res := &secrets.Resolver{Getenv: func(string) string { return "" }, Masker: m,
		Backend: &secrets.KubeBackend{Client: client, Namespace: ns, Masker: m}}
	// As a scheduler does at start: what the backend holds is masked from
	// the first line, also when a pod reads it without podflow's help.
	if err := res.LoadMasker(ctx, nil); err != nil {
		t.Fatal(err)
	}
	b := flowtest.New(t, builtin.Registry(builtin.Deps{Clients: kube.NewClients(), Connections: res.ForTasks()}))
	b.DAG("podsecret", fmt.Sprintf(`dag_id: podsecret
tasks:
  - task_id: print
    operator: kubernetes_pod
    image: alpine
    namespace: %s
    config_file: %s
    env_vars:
      - name: PW
        valueFrom: {secretKeyRef: {name: creds, key: value}}
    cmds: ["sh", "-c", "echo \"env=$PW\"; printf %%s \"$PW\" | base64; echo 'template={{ var.value.db_password }}'; echo 'url={{ var.value.db_password | urlencode }}'"]
`, ns, kubeconfig))
	b.Scheduler(func(c *scheduler.Config) { c.Connections, c.Mask = res.ForTasks(), m.Mask })
	runID := b.Trigger("podsecret", "")
	if got := b.WaitRun("podsecret", runID, 90*time.Second); got != runstate.RunSuccess {
		t.Fatalf("run %s", got)
	}
	var log string
	if err := b.Store.Pool.QueryRow(b.Ctx, `SELECT string_agg(line, E'\n' ORDER BY l.id) FROM task_logs l
		JOIN task_instances ti ON ti.id = l.ti_id WHERE ti.run_id = $1`, runID).Scan(&log); err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{value, base64.StdEncoding.EncodeToString([]byte(value)), url.QueryEscape(value)} {
		if strings.Contains(log, leak) {
			t.Errorf("the stored log shows %q:\n%s", leak, log)
		}
	}
	for _, want := range []string{"env=***", "template=***", "url=***"} {
		if !strings.Contains(log, want) {
			t.Errorf("the stored log lacks %q:\n%s", want, log)
		}
	}
	t.Logf("stored log:\n%s", log)
	if strings.Count(log, "***") < 4 {
		t.Errorf("want the 4 printed forms masked:\n%s", log)
	}
}
