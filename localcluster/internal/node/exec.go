package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"golang.org/x/sys/unix"
	utilexec "k8s.io/utils/exec"

	"github.com/podflow/podflow/localcluster/internal/sandbox"
)

// RunInContainer serves `kubectl exec`: the command joins the container's PID and mount namespaces (so it
// sees the container's volumes and only the pod's processes) with the container's environment. A non-zero
// exit is returned as an exit code, which the apiserver passes on to the client.
func (p *provider) RunInContainer(ctx context.Context, namespace, podName, containerName string, cmd []string, attach api.AttachIO) error {
	r := p.lookup(namespace, podName)
	if r == nil {
		return errdefs.NotFoundf("pod %s/%s is not on this node", namespace, podName)
	}
	if len(cmd) == 0 {
		return errdefs.InvalidInput("no command given")
	}
	r.mu.Lock()
	proc := r.running[containerName]
	env := r.envs[containerName]
	pod := r.pod
	r.mu.Unlock()
	if proc == nil || proc.hostPID == 0 {
		return errdefs.InvalidInputf("container %q in pod %q is not running", containerName, podName)
	}
	c := r.containerSpec(containerName)

	// nsenter joins the container's namespaces and root; the command then starts through the sandbox helper
	// (passed as descriptor 3: its path may not exist inside the container's root), which gives it the
	// container's capability limits and user before executing it.
	helper, err := os.Open(p.self)
	if err != nil {
		return fmt.Errorf("open sandbox helper: %w", err)
	}
	defer helper.Close()
	args := []string{"--target", strconv.Itoa(proc.hostPID), "--pid", "--mount", "--wd"}
	if p.privateRoot {
		args = append(args, "--root")
	}
	uidArg, gidArg := "-", "-"
	if uid, gid := runAs(pod, c); uid != nil {
		uidArg, gidArg = strconv.FormatInt(*uid, 10), strconv.FormatInt(*gid, 10)
	}
	args = append(args, "--", "/proc/self/fd/3", sandbox.ExecCommand, uidArg, gidArg, "--")
	args = append(args, cmd...)
	command := exec.CommandContext(ctx, "nsenter", args...)
	command.Env = env
	command.ExtraFiles = []*os.File{helper}
	command.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	command.WaitDelay = 500 * time.Millisecond

	if attach.TTY() {
		err = runWithTTY(command, attach, p.privateRoot, proc.hostPID)
	} else {
		err = runWithPipes(command, attach)
	}
	return execResult(command, err)
}

func runWithPipes(command *exec.Cmd, attach api.AttachIO) error {
	if out := attach.Stdout(); out != nil {
		command.Stdout = out
	}
	if errOut := attach.Stderr(); errOut != nil {
		command.Stderr = errOut
	}
	var stdinWriter *os.File
	if in := attach.Stdin(); in != nil {
		reader, writer, err := os.Pipe()
		if err != nil {
			return err
		}
		command.Stdin = reader
		stdinWriter = writer
		go func() {
			_, _ = io.Copy(writer, in)
			writer.Close()
		}()
		defer reader.Close()
	}
	if err := command.Start(); err != nil {
		return err
	}
	if f, ok := command.Stdin.(*os.File); ok {
		f.Close()
	}
	err := command.Wait()
	if stdinWriter != nil {
		stdinWriter.Close()
	}
	return err
}

func runWithTTY(command *exec.Cmd, attach api.AttachIO, privateRoot bool, containerPID int) error {
	tty, err := startWithTTY(command, privateRoot, containerPID)
	if err != nil {
		return err
	}
	defer tty.Close()
	go func() {
		for size := range attach.Resize() {
			_ = pty.Setsize(tty, &pty.Winsize{Rows: size.Height, Cols: size.Width})
		}
	}()
	if in := attach.Stdin(); in != nil {
		go func() { _, _ = io.Copy(tty, in) }()
	}
	outputDone := make(chan struct{})
	go func() {
		defer close(outputDone)
		if out := attach.Stdout(); out != nil {
			_, _ = io.Copy(out, tty)
		}
	}()
	err = command.Wait()
	select {
	case <-outputDone:
	case <-time.After(500 * time.Millisecond):
	}
	return err
}

// execResult turns the command's end into what the exec stream reports: nil, or an exit code.
func execResult(command *exec.Cmd, err error) error {
	if command.ProcessState == nil {
		if err == nil {
			err = errors.New("command did not start")
		}
		return fmt.Errorf("exec: %w", err)
	}
	code := exitCode(command.ProcessState, err)
	if code == 0 {
		return nil
	}
	return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: code}
}

// startWithTTY starts command on a new terminal as its controlling terminal. With a private root the
// terminal is allocated in the container's own devpts (its /dev/pts), so `tty` and programs that look up
// their terminal by name find it there; the host's /dev/pts is not visible in the container.
func startWithTTY(command *exec.Cmd, privateRoot bool, containerPID int) (*os.File, error) {
	if !privateRoot {
		return pty.Start(command)
	}
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", containerPID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open container root: %w", err)
	}
	// The container (root in it) controls its filesystem: no symbolic link may lead this host-side open
	// anywhere but to its own devpts.
	mfd, err := unix.Openat2(root, "dev/pts/ptmx", &unix.OpenHow{
		Flags:   unix.O_RDWR | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	unix.Close(root)
	if err != nil {
		return nil, fmt.Errorf("open the container's /dev/pts/ptmx: %w", err)
	}
	master := os.NewFile(uintptr(mfd), "ptmx")
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	sfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		master.Close()
		return nil, fmt.Errorf("open pty peer: %w", errno)
	}
	slave := os.NewFile(sfd, "pty")
	defer slave.Close()
	command.Stdin, command.Stdout, command.Stderr = slave, slave, slave
	if command.SysProcAttr == nil {
		command.SysProcAttr = &syscall.SysProcAttr{}
	}
	command.SysProcAttr.Setsid = true
	command.SysProcAttr.Setctty = true
	command.SysProcAttr.Ctty = 0
	if err := command.Start(); err != nil {
		master.Close()
		return nil, err
	}
	return master, nil
}
