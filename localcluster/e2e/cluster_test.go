package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func TestNodeIsReadyWithLabelsAndVersion(t *testing.T) {
	t.Parallel()
	out := mustKubectl(t, "get", "nodes", "--no-headers")
	if !strings.Contains(out, "localcluster") || !strings.Contains(out, " Ready ") {
		t.Fatalf("kubectl get nodes: want localcluster Ready, got:\n%s", out)
	}
	if !strings.Contains(out, "v1.37.2") {
		t.Errorf("kubectl get nodes: want kubelet version v1.37.2, got:\n%s", out)
	}
	node, err := shared.client.CoreV1().Nodes().Get(testContext(t, 10*time.Second), "localcluster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range nodeLabels {
		if node.Labels[k] != v {
			t.Errorf("node label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	if len(node.Spec.Taints) != 0 {
		t.Errorf("node taints = %v, want none", node.Spec.Taints)
	}
	version := mustKubectl(t, "version")
	if strings.Count(version, "v1.37.2") < 2 {
		t.Errorf("kubectl version: want client and server v1.37.2, got:\n%s", version)
	}
}

func TestNamespaceGetsDefaultServiceAccountAndDeletedNamespaceGoesAway(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t) // waits for the default ServiceAccount
	ctx := testContext(t, 60*time.Second)
	pod := createPod(t, simplePod(ns, "sleeper", "sleep", "3600"))
	waitRunning(t, ns, pod.Name)
	w, err := shared.client.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", ns).String()})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := shared.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for ev := range w.ResultChan() {
		if ev.Type == watch.Deleted {
			return
		}
	}
	_, err = shared.client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s still exists 60s after delete (%v)", ns, err)
	}
}

func TestInvalidPodIsRejectedWithValidationMessage(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	pod := simplePod(ns, "Invalid_Name", "true")
	pod.Spec.Containers = append(pod.Spec.Containers, pod.Spec.Containers[0]) // duplicate container name
	_, err := shared.client.CoreV1().Pods(ns).Create(testContext(t, 10*time.Second), pod, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("create invalid pod: want Invalid error, got %v", err)
	}
	for _, want := range []string{"metadata.name: Invalid value", "spec.containers[1].name: Duplicate value"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestNodeSelectorWithoutMatchingNodeStaysUnschedulable(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	hdd := simplePod(ns, "wants-hdd", "true")
	hdd.Spec.NodeSelector = map[string]string{"disktype": "hdd"}
	createPod(t, hdd)
	ssd := simplePod(ns, "wants-ssd", "true")
	ssd.Spec.NodeSelector = map[string]string{"disktype": "ssd"}
	createPod(t, ssd)

	p := waitPod(t, ns, hdd.Name, 30*time.Second, "unschedulable", func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return true
			}
		}
		return false
	})
	if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
		t.Errorf("pod with disktype=hdd: phase %s node %q, want Pending and unbound", p.Status.Phase, p.Spec.NodeName)
	}
	waitPhase(t, ns, ssd.Name, corev1.PodSucceeded)
}

func TestTokenRequestTokenIsLimitedToItsRole(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ctx := testContext(t, 30*time.Second)
	c := shared.client
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader-reads-pods"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "reader", Namespace: ns}},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "pod-reader"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	cfg := rest.AnonymousClientConfig(shared.config)
	cfg.BearerToken = tok.Status.Token
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// RBAC is evaluated from an informer cache: allow the new binding a moment to arrive.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = sa.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("list pods with the role's token: %v", err)
	}
	_, err = sa.CoreV1().Pods(ns).Create(ctx, simplePod(ns, "not-allowed", "true"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create pod with a get/list role: want Forbidden, got %v", err)
	}
	want := `User "system:serviceaccount:` + ns + `:reader" cannot create resource "pods"`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if _, err := sa.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list secrets with a pods-only role: want Forbidden, got %v", err)
	}
}
