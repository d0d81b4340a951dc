// Package e2e tests localcluster from the outside: it starts the built bin/localcluster once per test binary
// and drives it through client-go and the built bin/kubectl.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// shared is the cluster every test uses, each in its own namespace.
var shared *cluster

// nodeLabels are set on the shared cluster's node.
var nodeLabels = map[string]string{"disktype": "ssd", "topology.kubernetes.io/zone": "local-a"}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	for _, bin := range []string{localclusterBin(), kubectlBin()} {
		if _, err := os.Stat(bin); err != nil {
			fmt.Fprintf(os.Stderr, "%s is missing: run `make localcluster` first (tests never build it: a cold build takes ~25 min)\n", bin)
			return 1
		}
	}
	var labels []string
	for k, v := range nodeLabels {
		labels = append(labels, "--node-label", k+"="+v)
	}
	c, err := startCluster(labels...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "start localcluster: %v\n", err)
		return 1
	}
	fmt.Printf("localcluster ready in %s\n", c.startup.Round(time.Millisecond))
	shared = c
	code := m.Run()
	if err := c.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop localcluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func binDir() string {
	if dir := os.Getenv("LOCALCLUSTER_BIN_DIR"); dir != "" {
		return dir
	}
	abs, _ := filepath.Abs(filepath.Join("..", "..", "bin"))
	return abs
}

func localclusterBin() string { return filepath.Join(binDir(), "localcluster") }
func kubectlBin() string      { return filepath.Join(binDir(), "kubectl") }

// cluster is one running `localcluster up`.
type cluster struct {
	dir        string
	kubeconfig string
	cmd        *exec.Cmd
	exited     chan struct{}
	config     *rest.Config
	client     kubernetes.Interface
	launched   time.Time
	startup    time.Duration
	ownsDir    bool
}

func startCluster(extraArgs ...string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "localcluster-e2e-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, ownsDir: true, exited: make(chan struct{})}
	args := append([]string{"up", "--dir", dir, "--exit-with-parent"}, extraArgs...)
	c.cmd = exec.Command(localclusterBin(), args...)
	c.cmd.Stderr = os.Stderr
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.launched = time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		c.cmd.Wait() //nolint:errcheck // the exit status is checked by stop.
		close(c.exited)
	}()
	ready := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			line := scanner.Text()
			if strings.HasPrefix(line, "localcluster ready ") {
				ready <- line
			}
		}
	}()
	select {
	case line := <-ready:
		c.startup = time.Since(c.launched)
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "kubeconfig="); ok {
				c.kubeconfig = v
			}
		}
	case <-c.exited:
		return nil, fmt.Errorf("localcluster exited before ready: %v (logs in %s)", c.cmd.ProcessState, dir)
	case <-time.After(4 * time.Minute):
		c.stop() //nolint:errcheck // already failing.
		return nil, fmt.Errorf("localcluster not ready after 4 minutes (logs in %s)", dir)
	}
	c.config, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	if err != nil {
		return nil, err
	}
	c.config.QPS, c.config.Burst = 100, 200
	c.client, err = kubernetes.NewForConfig(c.config)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cluster) stop() error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("localcluster did not exit within 60s of SIGTERM")
	}
	if !c.cmd.ProcessState.Success() {
		return fmt.Errorf("localcluster exited with %v", c.cmd.ProcessState)
	}
	if c.ownsDir && os.Getenv("LOCALCLUSTER_KEEP") == "" {
		os.RemoveAll(c.dir)
	}
	return nil
}

func testContext(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}
