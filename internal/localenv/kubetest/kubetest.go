// Package kubetest gives tests a real Kubernetes cluster: the one KUBECONFIG
// names, else the local cluster (bin/localcluster), started once per test
// binary on first use and stopped when the binary's tests end.
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
//
//	func TestPod(t *testing.T) {
//		kubeconfig := kubetest.Kubeconfig(t)
//		ns := kubetest.Namespace(t) // fresh namespace, deleted after the test
//		…
//	}
//
// A test that needs the cluster and finds none fails, saying how to build it;
// it never skips.
package kubetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podflow/podflow/internal/localkube"
)

// cluster is the test binary's cluster. Test binaries have one process-wide
// cluster by design (TestMain owns its lifetime), hence package state.
var cluster struct {
	once       sync.Once
	kubeconfig string
	err        error
	local      *localkube.Cluster
}

// Main runs the tests and stops the local cluster if one was started.
func Main(m *testing.M) {
	code := m.Run()
	stop()
	os.Exit(code)
}

// Kubeconfig returns the path of a kubeconfig for the test cluster, starting
// the local cluster on first use when KUBECONFIG is not set.
func Kubeconfig(t testing.TB) string {
	t.Helper()
	cluster.once.Do(func() {
		if env := os.Getenv("KUBECONFIG"); env != "" {
			cluster.kubeconfig = strings.Split(env, string(os.PathListSeparator))[0]
			return
		}
		cluster.kubeconfig, cluster.err = start()
	})
	if cluster.err != nil {
		t.Fatalf("kubetest: %v", cluster.err)
	}
	return cluster.kubeconfig
}

// Client returns a clientset for the test cluster.
func Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", Kubeconfig(t))
	if err != nil {
		t.Fatalf("kubetest: kubeconfig: %v", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("kubetest: client: %v", err)
	}
	return cs
}

// Namespace creates a namespace for the test, waits for its default service
// account, and deletes it when the test ends.
func Namespace(t testing.TB) string {
	t.Helper()
	cs := Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "t-" + namePrefix(t.Name()) + "-",
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubetest: create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("kubetest: delete namespace %s: %v", ns.Name, err)
		}
	})
	// Pods are refused until the namespace's default service account exists.
	for {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return ns.Name
		}
		if !apierrors.IsNotFound(err) || ctx.Err() != nil {
			t.Fatalf("kubetest: default service account of %s: %v", ns.Name, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func namePrefix(testName string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 30 {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// start runs the local cluster (bin/localcluster) in a temporary folder.
func start() (string, error) {
	bin, err := localkube.FindClusterBinary()
	if err != nil {
		return "", fmt.Errorf("no Kubernetes cluster: KUBECONFIG is not set and %w", err)
	}
	dir, err := os.MkdirTemp("", "podflow-kubetest-")
	if err != nil {
		return "", err
	}
	c, err := localkube.StartCluster(context.Background(), bin, dir, nil)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	cluster.local = c
	return c.Kubeconfig, nil
}

// stop ends the local cluster (SIGTERM, which stops its pods) if started.
func stop() {
	if cluster.local == nil {
		return
	}
	cluster.local.Stop()
	_ = os.RemoveAll(cluster.local.Dir)
	cluster.local = nil
}

// Stop ends the local cluster if this test binary started one; for a
// TestMain that also manages other resources (Main calls it).
func Stop() { stop() }
