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
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// startTimeout bounds the local cluster's start (apiserver, scheduler, node).
const startTimeout = 3 * time.Minute

// cluster is the test binary's cluster. Test binaries have one process-wide
// cluster by design (TestMain owns its lifetime), hence package state.
var cluster struct {
	once       sync.Once
	kubeconfig string
	err        error
	cmd        *exec.Cmd
	dir        string
	done       chan struct{}
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

// binary finds bin/localcluster at the root of the podflow module
// (PODFLOW_LOCALCLUSTER overrides).
func binary() (string, error) {
	if p := os.Getenv("PODFLOW_LOCALCLUSTER"); p != "" {
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/podflow/podflow\n") {
			bin := filepath.Join(dir, "bin", "localcluster")
			if _, err := os.Stat(bin); err != nil {
				return "", fmt.Errorf("no Kubernetes cluster: KUBECONFIG is not set and %s is missing; run `make localcluster`", bin)
			}
			return bin, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no Kubernetes cluster: KUBECONFIG is not set and the podflow module root (for bin/localcluster) was not found; run `make localcluster`")
		}
		dir = parent
	}
}

// start runs `localcluster up --dir TMP` and waits for its ready line.
func start() (string, error) {
	bin, err := binary()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "podflow-kubetest-")
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "up", "--dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	cluster.cmd, cluster.dir, cluster.done = cmd, dir, make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "localcluster ready") {
				ready <- line
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		close(cluster.done)
	}()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	select {
	case line := <-ready:
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "kubeconfig="); ok {
				kubeconfig = v
			}
		}
		if _, err := os.Stat(kubeconfig); err != nil {
			return "", fmt.Errorf("localcluster is ready but %s: %w", kubeconfig, err)
		}
		return kubeconfig, nil
	case err := <-exited:
		return "", fmt.Errorf("localcluster exited before it was ready (%v): %s", err, lastLines(stderr.String(), 10))
	case <-time.After(startTimeout):
		stop()
		return "", fmt.Errorf("localcluster not ready after %s (logs in %s)", startTimeout, dir)
	}
}

// Stop ends the local cluster if this test binary started one; for a
// TestMain that also manages other resources (Main calls it).
func Stop() { stop() }

// stop ends the local cluster (SIGTERM, which stops its pods) if started.
func stop() {
	if cluster.cmd == nil || cluster.cmd.Process == nil {
		return
	}
	_ = cluster.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-cluster.done:
	case <-time.After(30 * time.Second):
		_ = cluster.cmd.Process.Kill()
		<-cluster.done
	}
	_ = os.RemoveAll(cluster.dir)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
