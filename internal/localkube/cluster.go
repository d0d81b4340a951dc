package localkube

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
	"time"
)

// ClusterStartTimeout bounds the local cluster's start.
const ClusterStartTimeout = 3 * time.Minute

// Cluster is a running local Kubernetes cluster (bin/localcluster).
type Cluster struct {
	Dir        string
	Kubeconfig string
	cmd        *exec.Cmd
	done       chan struct{}
}

// FindClusterBinary finds bin/localcluster: PODFLOW_LOCALCLUSTER, else next
// to the running executable, else bin/ at the podflow module root above the
// working directory, else `localcluster` on PATH.
func FindClusterBinary() (string, error) {
	if p := os.Getenv("PODFLOW_LOCALCLUSTER"); p != "" {
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "localcluster"); isFile(p) {
			return p, nil
		}
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
				strings.Contains(string(b), "module github.com/podflow/podflow\n") {
				if p := filepath.Join(dir, "bin", "localcluster"); isFile(p) {
					return p, nil
				}
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("localcluster"); err == nil {
		return p, nil
	}
	return "", errors.New("no local cluster binary: run `make localcluster` (it builds bin/localcluster), or set KUBECONFIG to use a cluster you have")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// StartCluster runs `localcluster up --dir dir` and waits for its ready
// line. Its stderr goes to logw (nil: discarded). The cluster dies with this
// process (SIGTERM on parent death).
func StartCluster(ctx context.Context, binary, dir string, logw io.Writer) (*Cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("local cluster dir: %w", err)
	}
	cmd := exec.Command(binary, "up", "--dir", dir, "--exit-with-parent")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	tail := &tailWriter{}
	if logw == nil {
		logw = io.Discard
	}
	cmd.Stderr = io.MultiWriter(logw, tail)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	c := &Cluster{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "localcluster ready") {
				ready <- line
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); close(c.done) }()
	timer := time.NewTimer(ClusterStartTimeout)
	defer timer.Stop()
	select {
	case line := <-ready:
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "kubeconfig="); ok {
				c.Kubeconfig = v
			}
		}
		return c, nil
	case err := <-exited:
		return nil, fmt.Errorf("local cluster exited before it was ready (%v): %s", err, tail.String())
	case <-timer.C:
		c.Stop()
		return nil, fmt.Errorf("local cluster not ready after %s (logs in %s)", ClusterStartTimeout, dir)
	case <-ctx.Done():
		c.Stop()
		return nil, ctx.Err()
	}
}

// Stop ends the cluster (SIGTERM stops its pods), killing it after 30 s.
func (c *Cluster) Stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// tailWriter keeps the last lines written to it.
type tailWriter struct {
	mu    sync.Mutex
	lines []string
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.lines = append(w.lines, l)
	}
	if len(w.lines) > 10 {
		w.lines = w.lines[len(w.lines)-10:]
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}
