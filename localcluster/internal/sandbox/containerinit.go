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
	for _, m := range spec.Mounts {
		if err := bindMount(m); err != nil {
			fmt.Fprintf(os.Stderr, "localcluster: mount %s at %s: %v\n", m.Source, m.Target, err)
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
