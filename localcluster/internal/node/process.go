package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/podflow/podflow/localcluster/internal/sandbox"
)

// process is one run of a container: nsenter joins the pod's PID and mount namespaces, unshare gives the
// container its own mount namespace, and localcluster's container init binds the volumes and execs the
// command. nsenter forks once, so the command is nsenter's child; hostPID is that child's host PID.
type process struct {
	cmd     *exec.Cmd
	hostPID int
	done    chan struct{}
	// exitCode is valid once done is closed: the command's exit status, or 128+signal.
	exitCode int
}

func startProcess(self string, pausePID int, specPath string, env []string, stdout, stderr io.Writer) (*process, error) {
	cmd := exec.Command("nsenter", "--target", strconv.Itoa(pausePID), "--pid", "--mount", "--",
		"unshare", "--mount", "--propagation", "private", "--",
		self, sandbox.ContainerInitCommand, specPath)
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A background process left in the pod may hold the output pipes open after the command exits.
	cmd.WaitDelay = 300 * time.Millisecond
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nsenter: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	p.hostPID = childPID(cmd.Process.Pid)
	go func() {
		defer close(p.done)
		err := cmd.Wait()
		p.exitCode = exitCode(cmd.ProcessState, err)
	}()
	return p, nil
}

// signal sends sig to the container's command (not to nsenter, which would not forward it).
func (p *process) signal(sig syscall.Signal) {
	pid := p.hostPID
	if pid == 0 {
		pid = childPID(p.cmd.Process.Pid)
	}
	if pid > 0 {
		_ = syscall.Kill(pid, sig)
		return
	}
	_ = p.cmd.Process.Signal(sig)
}

func exitCode(state *os.ProcessState, err error) int {
	if state == nil {
		return 128
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := state.ExitCode(); code >= 0 {
		return code
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return 0
	}
	return 128
}

// childPID returns the first child of pid, waiting briefly for nsenter to fork it; 0 if there is none.
func childPID(pid int) int {
	path := fmt.Sprintf("/proc/%d/task/%d/children", pid, pid)
	for range 200 {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		if fields := strings.Fields(string(data)); len(fields) > 0 {
			child, _ := strconv.Atoi(fields[0])
			return child
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0
}
