package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

// ContainerInitCommand is the hidden subcommand that runs RunContainerInit.
const ContainerInitCommand = "sandbox-container-init"

// ContainerSpec is what the node hands to a container's init, as a JSON file.
type ContainerSpec struct {
	Argv       []string `json:"argv"`
	WorkingDir string   `json:"workingDir"`
	Mounts     []Mount  `json:"mounts"`
	// UID and GID, when set, are the user and group the command runs as (securityContext runAsUser/Group).
	UID *int64 `json:"uid,omitempty"`
	GID *int64 `json:"gid,omitempty"`
	// RootScratch, when set, gives the container a private copy-on-write root (see enterPrivateRoot),
	// built in this directory.
	RootScratch string `json:"rootScratch,omitempty"`
	// MaskPaths are directories hidden under an empty read-only tmpfs in the private root (the cluster's
	// state directory: keys, certificates, other pods' volumes).
	MaskPaths []string `json:"maskPaths,omitempty"`
}

// Mount is one bind mount of a materialised volume.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

// RunContainerInit runs inside the container's private mount namespace (made by `unshare --mount`): it binds
// every volume at its mountPath, makes /proc/sys and /sys read-only, pivots into the private root, changes
// to the working directory, drops to Docker's default capabilities and replaces itself with the command,
// so the command keeps this PID. The environment it was started with is the container's.
// A command that cannot be found exits 127, as a shell would.
func RunContainerInit(specPath string) int {
	// Capabilities are per thread and execve takes the calling thread's: stay on one thread to the end.
	runtime.LockOSThread()
	data, err := os.ReadFile(specPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: read container spec: %v\n", err)
		return 128
	}
	var spec ContainerSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: parse container spec: %v\n", err)
		return 128
	}
	if err := prepareContainerFS(spec); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		return 128
	}
	if spec.WorkingDir != "" {
		if err := os.MkdirAll(spec.WorkingDir, 0o755); err == nil {
			err = os.Chdir(spec.WorkingDir)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "localcluster: working directory %s: %v\n", spec.WorkingDir, err)
			return 128
		}
	}
	return execConfined(spec.Argv, spec.UID, spec.GID)
}

// prepareContainerFS builds the container's view of the filesystem in its own mount namespace: the private
// root (unless the host's is used) with its own small /dev, masked paths, volumes at their mount paths, read-only kernel
// interfaces, and finally pivot_root into the private root.
func prepareContainerFS(spec ContainerSpec) error {
	root := ""
	if spec.RootScratch != "" {
		var err error
		if root, err = enterPrivateRoot(spec.RootScratch); err != nil {
			return fmt.Errorf("private root filesystem: %w", err)
		}
		if err := privateDev(root); err != nil {
			return err
		}
		if err := maskPaths(root, spec.MaskPaths); err != nil {
			return err
		}
	}
	for _, m := range spec.Mounts {
		if root != "" {
			var err error
			if m.Target, err = resolveInRoot(root, m.Target); err != nil {
				return fmt.Errorf("mount point: %w", err)
			}
		}
		if err := bindMount(m); err != nil {
			return fmt.Errorf("mount %s at %s: %w", m.Source, m.Target, err)
		}
	}
	if err := makeKernelPathsReadOnly(root); err != nil {
		return err
	}
	if root != "" {
		if err := pivotRoot(root); err != nil {
			return err
		}
	}
	return nil
}

// execConfined drops the capabilities a pod does not have, switches to uid/gid and replaces this process
// with argv. It only returns on failure, with the exit code to report (127: not found, 126: not
// executable, 128: set-up failed). The caller holds runtime.LockOSThread.
func execConfined(argv []string, uid, gid *int64) int {
	closeExtraFiles()
	if err := dropCapabilities(); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
		return 128
	}
	if err := switchUser(uid, gid); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: run as user: %v\n", err)
		return 128
	}
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "localcluster: container has neither command nor args (the image's entrypoint is unknown: images are ignored)")
		return 127
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %s: command not found\n", argv[0])
		return 127
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "localcluster: exec %s: %v\n", path, err)
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOEXEC) {
		return 126
	}
	return 127
}

// ExecCommand is the hidden subcommand that runs RunExec.
const ExecCommand = "sandbox-exec"

// RunExec serves `kubectl exec` after nsenter has joined the container's namespaces and root: the same
// capability limits and user as the container, then the command. args: UID GID -- ARGV..., where UID and
// GID are numbers or "-" for unchanged.
func RunExec(args []string) int {
	runtime.LockOSThread()
	if len(args) < 4 || args[2] != "--" {
		fmt.Fprintln(os.Stderr, "localcluster: usage: sandbox-exec UID GID -- COMMAND...")
		return 128
	}
	uid, err := optionalID(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: uid: %v\n", err)
		return 128
	}
	gid, err := optionalID(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: gid: %v\n", err)
		return 128
	}
	return execConfined(args[3:], uid, gid)
}

func optionalID(s string) (*int64, error) {
	if s == "-" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%q is not a user or group id", s)
	}
	return &n, nil
}

func bindMount(m Mount) error {
	info, err := os.Stat(m.Source)
	if err != nil {
		return err
	}
	if info.IsDir() {
		if err := os.MkdirAll(m.Target, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(m.Target), 0o755); err != nil {
			return err
		}
		if _, err := os.Stat(m.Target); errors.Is(err, os.ErrNotExist) {
			f, err := os.OpenFile(m.Target, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			f.Close()
		}
	}
	if err := syscall.Mount(m.Source, m.Target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
		return err
	}
	if m.ReadOnly {
		flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY)
		if err := syscall.Mount("", m.Target, "", flags, ""); err != nil {
			return fmt.Errorf("remount read-only: %w", err)
		}
	}
	return nil
}

// switchUser drops to gid and uid (Go applies set*id to every thread of the process).
func switchUser(uid, gid *int64) error {
	if gid != nil {
		if err := syscall.Setgroups([]int{int(*gid)}); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(int(*gid)); err != nil {
			return fmt.Errorf("setgid %d: %w", *gid, err)
		}
	}
	if uid != nil {
		if gid == nil {
			if err := syscall.Setgroups(nil); err != nil {
				return fmt.Errorf("setgroups: %w", err)
			}
		}
		if err := syscall.Setuid(int(*uid)); err != nil {
			return fmt.Errorf("setuid %d: %w", *uid, err)
		}
	}
	return nil
}
