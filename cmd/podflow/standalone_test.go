package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/localpg"
)

// runCLI runs one podflow command in-process, as a user would in a shell.
func runCLI(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// startStandalone runs `podflow standalone` with args in-process until the
// returned stop is called, or the test ends.
func startStandalone(t *testing.T, args ...string) (stop func()) {
	t.Helper()
	if !slices.Contains(args, "--webserver-addr") {
		// The tests that want the API give an address of their own; the
		// default 127.0.0.1:8080 may be taken on a test machine.
		args = append(args, "--webserver-addr", "")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		out, err := runCLI(t, ctx, append([]string{"standalone"}, args...)...)
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, out)
		}
		done <- err
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("standalone: %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("standalone did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitDatabase waits until `podflow db check` passes with args: the
// database is up and migrated.
func waitDatabase(t *testing.T, ctx context.Context, args ...string) {
	t.Helper()
	flowtest.Eventually(t, "the database is ready", time.Minute, func() bool {
		_, err := runCLI(t, ctx, append([]string{"db", "check"}, args...)...)
		return err == nil
	})
}

// Given no DATABASE_URL, `podflow standalone` keeps a persistent local
// PostgreSQL under PODFLOW_HOME: other commands find it, and a restarted
// standalone sees its earlier runs.
func TestStandaloneKeepsHistoryAcrossRestarts(t *testing.T) {
	if _, err := localpg.BinDir(); err != nil {
		t.Fatalf("this test needs the PostgreSQL server binaries: %v", err)
	}
	persistentHome(t)
	dags := t.TempDir()
	if err := os.WriteFile(filepath.Join(dags, "hello.yaml"), []byte("dag_id: hello\ntasks:\n  - {task_id: say, operator: bash, bash_command: 'echo hello from podflow'}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	stop := startStandalone(t, "--dags-folder", dags, "--workers", "4")
	waitDatabase(t, ctx) // standalone starts the database
	out, err := runCLI(t, ctx, "trigger", "hello", "--wait", "--dags-folder", dags)
	if err != nil {
		t.Fatalf("trigger --wait: %v\n%s", err, out)
	}
	runID := regexp.MustCompile(`run (manual__\S+) success`).FindStringSubmatch(out)
	if runID == nil {
		t.Fatalf("trigger output has no successful run: %s", out)
	}
	stop()

	startStandalone(t, "--dags-folder", dags, "--workers", "4")
	out, err = runCLI(t, ctx, "runs", "list")
	if err != nil || !strings.Contains(out, runID[1]) || !strings.Contains(out, "success") {
		t.Fatalf("after restart, runs list = %v\n%s\nwant run %s", err, out, runID[1])
	}
	out, err = runCLI(t, ctx, "logs", "hello", runID[1], "say")
	if err != nil || !strings.Contains(out, "hello from podflow") {
		t.Errorf("logs after restart: %v\n%s", err, out)
	}
}

// `podflow standalone --local-cluster` starts the local cluster, points pod
// tasks at it, and a pod task runs there; stopping standalone stops it.
func TestStandaloneLocalCluster(t *testing.T) {
	home, err := os.MkdirTemp("", "podflow-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(home) })
	t.Setenv("PODFLOW_HOME", home)
	t.Setenv("KUBECONFIG", "") // restored after the test; standalone sets it
	dags := t.TempDir()
	src := "dag_id: pod\ntasks:\n  - {task_id: p, operator: kubernetes_pod, image: alpine, cmds: [sh, -c, 'echo from the local cluster']}\n"
	if err := os.WriteFile(filepath.Join(dags, "pod.yaml"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stop := startStandalone(t, "--local-cluster", "--database-url", url, "--dags-folder", dags)
	kubeconfig := filepath.Join(home, "cluster", "kubeconfig")
	flowtest.Eventually(t, "KUBECONFIG points at "+kubeconfig, 2*time.Minute, func() bool { return os.Getenv("KUBECONFIG") == kubeconfig })
	waitDatabase(t, ctx, "--database-url", url) // then standalone migrates it
	out, err := runCLI(t, ctx, "trigger", "pod", "--wait", "--database-url", url, "--dags-folder", dags)
	if err != nil {
		t.Errorf("pod task on the local cluster: %v\n%s", err, out)
	}
	runID := regexp.MustCompile(`triggered pod run (\S+)`).FindStringSubmatch(out)
	if runID != nil {
		if log, _ := runCLI(t, ctx, "logs", "pod", runID[1], "p", "--database-url", url); !strings.Contains(log, "from the local cluster") {
			t.Errorf("pod log:\n%s", log)
		}
	}
	stop()
	if _, err := os.Stat(filepath.Join(home, "localcluster.log")); err != nil {
		t.Errorf("no local cluster log: %v", err)
	}
}

// persistentHome gives the test its own PODFLOW_HOME, with no database URL
// set, so commands use the persistent local PostgreSQL there; it is stopped
// and removed at cleanup.
func persistentHome(t *testing.T) string {
	t.Helper()
	home, err := os.MkdirTemp("", "podflow-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removePersistentHome(home) })
	t.Setenv("PODFLOW_HOME", home)
	t.Setenv("DATABASE_URL", "")
	t.Setenv("PODFLOW_DATABASE_URL", "")
	return home
}

// removePersistentHome stops the local PostgreSQL of home and removes home
// and its data directory (relocated under /var/lib/podflow as root).
func removePersistentHome(home string) {
	st, _ := localpg.PersistentPostgresStatus(home)
	_, _ = localpg.StopPersistentPostgres(context.Background(), home)
	if strings.HasPrefix(st.DataDir, "/var/lib/podflow/") {
		_ = os.RemoveAll(st.DataDir)
	}
	_ = os.RemoveAll(home)
}
