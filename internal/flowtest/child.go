package flowtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/podflow/podflow/internal/localenv/pgtest"
	"github.com/podflow/podflow/internal/store"
)

// childEnv names the mode a re-executed test binary runs in.
const childEnv = "PODFLOW_TEST_CHILD"

// Child is what a child process's mode gets: a context that ends on
// SIGTERM or SIGINT, the parent bundle's database and DAGs folder, and
// Ready, which tells the parent it runs.
type Child struct {
	Ctx    context.Context
	Store  *store.Store
	Dir    string
	Logger hclog.Logger
}

// Ready tells the parent the child runs; info follows "ready" on the line.
func (c *Child) Ready(info string) { fmt.Println("ready", info) }

// Env is a variable the parent passed with StartChild.
func (c *Child) Env(name string) string { return os.Getenv(name) }

// Main is a TestMain for packages that run daemons as child processes
// (to kill -9 them): run again by StartChild, the test binary runs the mode
// it was asked for instead of the tests. Otherwise it runs the tests and
// stops the throwaway Postgres, then whatever after stops.
//
//	func TestMain(m *testing.M) { os.Exit(flowtest.Main(m, modes)) }
func Main(m *testing.M, modes map[string]func(*Child) error, after ...func()) int {
	if mode := os.Getenv(childEnv); mode != "" {
		return runChild(mode, modes)
	}
	code := pgtest.Main(m)
	for _, f := range after {
		f()
	}
	return code
}

func runChild(mode string, modes map[string]func(*Child) error) int {
	run, ok := modes[mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "child process: no mode %q in this test binary\n", mode)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "child process %s: %v\n", mode, err)
		return 1
	}
	defer st.Close()
	c := &Child{Ctx: ctx, Store: st, Dir: os.Getenv("DAGS_FOLDER"),
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr})}
	if err := run(c); err != nil {
		fmt.Fprintf(os.Stderr, "child process %s: %v\n", mode, err)
		return 1
	}
	return 0
}

// Process is a child process of the test.
type Process struct {
	Cmd   *exec.Cmd
	Info  string        // what the child wrote after "ready"
	Lines *bufio.Reader // the rest of its standard output
	t     testing.TB
	ended chan struct{}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	p.t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	<-p.ended
}

// StartChild runs the test binary again in a mode of Main, on the bundle's
// database and DAGs folder, with extra "NAME=value" variables, and waits
// until it is ready. At cleanup it gets SIGTERM (SIGKILL after a minute).
func (b *Bundle) StartChild(mode string, env ...string) *Process {
	b.T.Helper()
	return StartChild(b.T, mode, b.URL, b.Dir, env...)
}

// StartChild is Bundle.StartChild for a test or benchmark with no Bundle:
// the child's database is databaseURL, its DAGs folder dagsDir ("" for
// none).
func StartChild(t testing.TB, mode, databaseURL, dagsDir string, env ...string) *Process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+mode, "DATABASE_URL="+databaseURL, "DAGS_FOLDER="+dagsDir), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Cmd: cmd, Lines: bufio.NewReader(out), t: t, ended: make(chan struct{})}
	go func() { _, _ = cmd.Process.Wait(); close(p.ended) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.ended:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-p.ended
		}
		_ = cmd.Wait()
	})
	line, err := p.Lines.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		t.Fatalf("child process %s did not start: %q %v", mode, line, err)
	}
	p.Info = strings.TrimSpace(strings.TrimPrefix(line, "ready"))
	return p
}
