package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
}

// Mount is one bind mount of a materialised volume.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

// RunContainerInit runs inside the container's private mount namespace (made by `unshare --mount`): it binds
// every volume at its mountPath, changes to the working directory and replaces itself with the command, so
// the command keeps this PID. The environment it was started with is the container's.
// A command that cannot be found exits 127, as a shell would.
func RunContainerInit(specPath string) int {
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
	root := ""
	if spec.RootScratch != "" {
		if root, err = enterPrivateRoot(spec.RootScratch); err != nil {
			fmt.Fprintf(os.Stderr, "localcluster: private root filesystem: %v\n", err)
			return 128
		}
	}
	for _, m := range spec.Mounts {
		if root != "" {
			if m.Target, err = resolveInRoot(root, m.Target); err != nil {
				fmt.Fprintf(os.Stderr, "localcluster: mount point: %v\n", err)
				return 128
			}
		}
		if err := bindMount(m); err != nil {
			fmt.Fprintf(os.Stderr, "localcluster: mount %s at %s: %v\n", m.Source, m.Target, err)
			return 128
		}
	}
	if root != "" {
		if err := syscall.Chroot(root); err != nil {
			fmt.Fprintf(os.Stderr, "localcluster: chroot: %v\n", err)
			return 128
		}
		if err := os.Chdir("/"); err != nil {
			fmt.Fprintf(os.Stderr, "localcluster: chdir /: %v\n", err)
			return 128
		}
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
	if err := switchUser(spec.UID, spec.GID); err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: run as user: %v\n", err)
		return 128
	}
	if len(spec.Argv) == 0 {
		fmt.Fprintln(os.Stderr, "localcluster: container has neither command nor args (the image's entrypoint is unknown: images are ignored)")
		return 127
	}
	path, err := exec.LookPath(spec.Argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "localcluster: %s: command not found\n", spec.Argv[0])
		return 127
	}
	err = syscall.Exec(path, spec.Argv, os.Environ())
	fmt.Fprintf(os.Stderr, "localcluster: exec %s: %v\n", path, err)
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.ENOEXEC) {
		return 126
	}
	return 127
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
