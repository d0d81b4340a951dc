package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podflow/podflow/internal/localenv/kubetest"
	"github.com/podflow/podflow/internal/localenv/pgtest"
)

// TestMain stops the local cluster and the throwaway PostgreSQL if a test
// started them.
func TestMain(m *testing.M) {
	code := m.Run()
	kubetest.Stop()
	if err := pgtest.Stop(); err != nil && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// kubectl is bin/kubectl (built with the local cluster by `make localcluster`).
func kubectl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(repoRoot(t), "bin", "kubectl")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `make localcluster`", bin)
	}
	return bin
}

// kubectlRunner runs bin/kubectl against the test cluster from the repository root.
func kubectlRunner(t *testing.T, kubeconfig string) func(args ...string) (string, error) {
	bin, root := kubectl(t), repoRoot(t)
	return func(args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// ensureNamespace applies deploy/kubernetes/namespace.yaml for real, as the
// README's first command does on a fresh cluster, and deletes the namespace
// when the test ends; it reports false, creating nothing, when the namespace
// exists already (then it is not the test's to change or delete).
func ensureNamespace(t *testing.T, kubeconfig string) bool {
	t.Helper()
	cs := kubetest.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	// A namespace being deleted (e.g. by the previous test) is waited out.
	for err == nil && ns.Status.Phase == corev1.NamespaceTerminating && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		ns, err = cs.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	}
	switch {
	case err == nil:
		t.Logf("namespace %s exists already; left as it is", namespace)
		return false
	case !apierrors.IsNotFound(err):
		t.Fatalf("get namespace %s: %v", namespace, err)
	}
	if out, err := kubectlRunner(t, kubeconfig)("apply", "-f", "deploy/kubernetes/namespace.yaml"); err != nil {
		t.Fatalf("kubectl apply -f deploy/kubernetes/namespace.yaml: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cs.CoreV1().Namespaces().Delete(ctx, namespace, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("delete namespace %s: %v", namespace, err)
		}
	})
	return true
}

// The README's two commands, against a real API server: the Namespace for
// real (as on a fresh cluster), then the whole folder with
// --dry-run=server, so every object passes the API server's validation and
// admission without running anything.
func TestManifestsServerDryRun(t *testing.T) {
	kubeconfig := kubetest.Kubeconfig(t)
	ensureNamespace(t, kubeconfig)
	out, err := kubectlRunner(t, kubeconfig)("apply", "--dry-run=server", "-R", "-f", "deploy/kubernetes")
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server -R -f deploy/kubernetes: %v\n%s", err, out)
	}
	t.Logf("kubectl apply --dry-run=server -R -f deploy/kubernetes:\n%s", out)
	accepted := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasSuffix(line, "(server dry run)") {
			accepted[strings.Fields(line)[0]] = true
		}
	}
	// kubectl names objects kind.group/name, e.g. deployment.apps/podflow-scheduler.
	for _, o := range manifests(t) {
		found := false
		for ref := range accepted {
			kind, name, _ := strings.Cut(ref, "/")
			kind, _, _ = strings.Cut(kind, ".")
			if strings.EqualFold(kind, o.kind) && name == o.name {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %s %s is not in the dry run's output", o.file, o.kind, o.name)
		}
	}
}

// The ServiceAccount, Role and RoleBinding, applied for real, give the
// ServiceAccount the operator's rights in its namespace and nothing next to
// them (the API server's own authorizer answers, through impersonation).
// That the rights suffice for a pod task with XCom is an end-to-end test's.
func TestManifestsServiceAccountRights(t *testing.T) {
	kubeconfig := kubetest.Kubeconfig(t)
	if !ensureNamespace(t, kubeconfig) {
		t.Fatalf("namespace %s exists in the test cluster: this test applies RBAC objects for real, so it needs a cluster without it", namespace)
	}
	kc := kubectlRunner(t, kubeconfig)
	for _, f := range []string{"serviceaccount.yaml", "role.yaml", "rolebinding.yaml"} {
		if out, err := kc("apply", "-f", "deploy/kubernetes/"+f); err != nil {
			t.Fatalf("kubectl apply -f deploy/kubernetes/%s: %v\n%s", f, err, out)
		}
	}
	as := "system:serviceaccount:" + namespace + ":" + serviceAccount
	for _, c := range []struct {
		verb, resource, subresource, ns string
		want                            bool
	}{
		{"create", "pods", "", namespace, true},
		{"get", "pods", "", namespace, true},
		{"list", "pods", "", namespace, true},
		{"watch", "pods", "", namespace, true},
		{"delete", "pods", "", namespace, true},
		{"get", "pods", "log", namespace, true},
		{"create", "pods", "exec", namespace, true},
		{"list", "events", "", namespace, true},
		// Nothing more: no other verbs, resources or namespaces.
		{"update", "pods", "", namespace, false},
		{"patch", "pods", "", namespace, false},
		{"deletecollection", "pods", "", namespace, false},
		{"create", "pods", "attach", namespace, false},
		{"create", "pods", "portforward", namespace, false},
		{"watch", "events", "", namespace, false},
		{"create", "events", "", namespace, false},
		{"get", "secrets", "", namespace, false},
		{"get", "configmaps", "", namespace, false},
		{"create", "deployments.apps", "", namespace, false},
		{"create", "pods", "", "default", false},
		{"list", "pods", "", "kube-system", false},
	} {
		args := []string{"auth", "can-i", c.verb, c.resource, "-n", c.ns, "--as", as}
		if c.subresource != "" {
			args = append(args, "--subresource", c.subresource)
		}
		out, err := kc(args...)
		got := strings.TrimSpace(out) == "yes"
		if err != nil && got || err == nil && !got || (strings.TrimSpace(out) != "yes" && strings.TrimSpace(out) != "no") {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if got != c.want {
			t.Errorf("%s %s %s/%s in %s: allowed=%v, want %v", as, c.verb, c.resource, c.subresource, c.ns, got, c.want)
		}
	}
}
