package deploy_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/kube"
	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators/builtin"
)

// serviceAccountKubeconfig binds deploy/kubernetes/role.yaml (less any
// resource in drop) to a new ServiceAccount in ns and returns a kubeconfig
// holding a TokenRequest token for it — what the in-cluster loader would
// read from the pod's service account files.
func serviceAccountKubeconfig(t *testing.T, admin kubernetes.Interface, adminConfig, ns string, drop string) string {
	t.Helper()
	ctx := context.Background()
	var role rbacv1.Role
	if err := yaml.UnmarshalStrict(readRepoFile(t, "deploy/kubernetes/role.yaml"), &role); err != nil {
		t.Fatal(err)
	}
	role.Namespace = ns
	var rules []rbacv1.PolicyRule
	for _, r := range role.Rules {
		if len(r.Resources) == 1 && r.Resources[0] == drop {
			continue
		}
		rules = append(rules, r)
	}
	role.Rules = rules
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, &role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "podflow", Namespace: ns}}
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "podflow", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "podflow", Namespace: ns}}}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "podflow", &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.LoadFromFile(adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	cur := raw.Contexts[raw.CurrentContext]
	cluster := raw.Clusters[cur.Cluster]
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = cluster
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "sa", Namespace: ns}
	cfg.CurrentContext = "sa"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// runXComDAG runs a deferrable pod task with XCom and a bash task pulling
// it, through a real scheduler and triggerer whose pod access is the given
// kubeconfig, and returns the run's task instances.
func runXComDAG(t *testing.T, kubeconfig, ns string) (store.Run, []store.TaskInstance) {
	t.Helper()
	b := flowtest.New(t, builtin.Registry(builtin.Deps{Clients: kube.NewClients()}))
	b.DAG("rbac", `dag_id: rbac
tasks:
  - task_id: write-xcom
    operator: kubernetes_pod
    image: alpine
    namespace: `+ns+`
    config_file: `+kubeconfig+`
    cmds: ["sh", "-c", "mkdir -p /airflow/xcom/; echo '[1,2,3,4]' > /airflow/xcom/return.json"]
    do_xcom_push: true
    deferrable: true
    log_events_on_failure: true
  - task_id: pod_task_xcom_result
    operator: bash
    upstream: [write-xcom]
    bash_command: echo "{{ task_instance.xcom_pull('write-xcom')[0] }}"
`)
	b.Scheduler(func(c *scheduler.Config) { c.Workers = 4 })
	b.Triggerer(nil)
	runID := b.Trigger("rbac", "")
	b.WaitRun("rbac", runID, 3*time.Minute)
	tis := b.TIs("rbac", runID)
	for i := range tis { // keep each task's log in its error for the assertions
		tis[i].Error += "\n" + b.Log("rbac", runID, tis[i].TaskID)
	}
	return b.Run("rbac", runID), tis
}

// Given only the ServiceAccount's Role from deploy/kubernetes, a deferred
// pod task with XCom succeeds through the scheduler and the triggerer: the
// Role is sufficient.
func TestServiceAccountRoleIsSufficient(t *testing.T) {
	admin := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kubeconfig := serviceAccountKubeconfig(t, admin, kubetest.Kubeconfig(t), ns, "")
	run, tis := runXComDAG(t, kubeconfig, ns)
	if run.State != runstate.RunSuccess {
		for _, ti := range tis {
			t.Logf("%s: %s %s", ti.TaskID, ti.State, ti.Error)
		}
		t.Fatalf("run %s with the deploy Role's rights", run.State)
	}
	for _, ti := range tis {
		if ti.TaskID == "pod_task_xcom_result" && !strings.Contains(ti.Error, "\n1") {
			t.Errorf("the bash task did not print the pod's XCom:%s", ti.Error)
		}
	}
}

// Given a Role without pods/exec, the pod task fails with an RBAC error
// that names the missing permission.
func TestRoleWithoutExecFailsClearly(t *testing.T) {
	admin := kubetest.Client(t)
	ns := kubetest.Namespace(t)
	kubeconfig := serviceAccountKubeconfig(t, admin, kubetest.Kubeconfig(t), ns, "pods/exec")
	run, tis := runXComDAG(t, kubeconfig, ns)
	if run.State != runstate.RunFailed {
		t.Fatalf("run %s, want failed without pods/exec", run.State)
	}
	for _, ti := range tis {
		if ti.TaskID != "write-xcom" {
			continue
		}
		if !strings.Contains(ti.Error, "forbidden") || !strings.Contains(ti.Error, "pods/exec") {
			t.Errorf("error does not name the missing permission pods/exec:\n%s", ti.Error)
		}
	}
}
