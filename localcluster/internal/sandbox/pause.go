// Package sandbox holds the two small programs localcluster re-executes itself as: the per-pod "pause"
// process that owns a pod's PID and mount namespaces, and the per-container init that bind-mounts volumes
// in a private mount namespace and then executes the container's command.
package sandbox

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// PauseCommand is the hidden subcommand that runs RunPause.
const PauseCommand = "sandbox-pause"

// RunPause is PID 1 of a pod's PID namespace: it mounts the namespace's own /proc, reports ready on stdout
// and then reaps orphans until it is killed. Killing it kills every process of the pod.
func RunPause() int {
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		fmt.Fprintf(os.Stderr, "pause: mount /proc: %v\n", err)
		return 1
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)
	fmt.Println("ready")
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			return 0
		}
		reapAll()
	}
	return 0
}

func reapAll() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// Pause is a running pause process.
type Pause struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// StartPause starts a pause process in new PID and mount namespaces and waits until /proc is mounted.
// self is the path of the localcluster binary.
func StartPause(self string, stderr io.Writer) (*Pause, error) {
	cmd := exec.Command(self, PauseCommand)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID,
		// Go makes "/" recursively private in the new mount namespace before exec.
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
		Setpgid:      true,
	}
	cmd.Stderr = stderr
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("pause stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pause process: %w", err)
	}
	p := &Pause{cmd: cmd, done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
		io.Copy(io.Discard, out) //nolint:errcheck // drains until the pause process exits.
	}()
	go func() {
		defer close(p.done)
		cmd.Wait() //nolint:errcheck // the pause process is only ever killed.
	}()
	select {
	case err := <-ready:
		if err != nil {
			p.Kill()
			return nil, fmt.Errorf("pause process failed to start: %w", err)
		}
	case <-time.After(20 * time.Second):
		p.Kill()
		return nil, fmt.Errorf("pause process not ready after 20s")
	}
	return p, nil
}

// PID is the pause process's PID in the host's PID namespace.
func (p *Pause) PID() int { return p.cmd.Process.Pid }

// Kill SIGKILLs the pause process, which makes the kernel kill every process in the pod, and waits for it.
func (p *Pause) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Done is closed when the pause process has exited.
func (p *Pause) Done() <-chan struct{} { return p.done }

// HelperPath returns the binary to start for pause and container-init processes: localcluster-sandbox next
// to the running binary when it is there (small, starts in milliseconds), else the running binary itself,
// which understands the same hidden commands.
func HelperPath() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find localcluster binary: %w", err)
	}
	helper := filepath.Join(filepath.Dir(self), "localcluster-sandbox")
	if info, err := os.Stat(helper); err == nil && info.Mode().IsRegular() && info.Mode()&0o111 != 0 {
		return helper, nil
	}
	return self, nil
}
