package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// KeptCapabilities are the capabilities a container keeps: Docker's (and so a Kubernetes pod's) default
// set. Everything else — CAP_SYS_ADMIN (mount, and with it most escapes), CAP_SYS_PTRACE, CAP_SYS_MODULE,
// CAP_NET_ADMIN, CAP_DAC_READ_SEARCH (open_by_handle_at), … — is dropped from every capability set.
var KeptCapabilities = []uintptr{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FSETID, unix.CAP_FOWNER, unix.CAP_MKNOD,
	unix.CAP_NET_RAW, unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETFCAP, unix.CAP_SETPCAP,
	unix.CAP_NET_BIND_SERVICE, unix.CAP_SYS_CHROOT, unix.CAP_KILL, unix.CAP_AUDIT_WRITE,
}

// keptMask is KeptCapabilities as a bit mask (0xa80425fb, what /proc/self/status shows as CapEff).
func keptMask() uint64 {
	var m uint64
	for _, c := range KeptCapabilities {
		m |= 1 << c
	}
	return m
}

// dropCapabilities limits the calling thread to KeptCapabilities: bounding set first (so no later exec of a
// set-user-ID or file-capability program regains them), then permitted, effective and inheritable, then
// ambient. The caller must hold runtime.LockOSThread and exec on the same thread: capability sets are
// per thread, and execve takes the calling thread's.
func dropCapabilities() error {
	last, err := lastCapability()
	if err != nil {
		return err
	}
	keep := keptMask()
	for c := uintptr(0); c <= last; c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	for i := range data {
		k := uint32(keep >> (32 * i))
		data[i].Effective &= k
		data[i].Permitted &= k
		data[i].Inheritable &= k
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	return nil
}

func lastCapability() (uintptr, error) {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read cap_last_cap: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n < 0 || n > 63 {
		return 0, fmt.Errorf("cap_last_cap %q: not a capability number", data)
	}
	return uintptr(n), nil
}

// readOnlyKernelPaths are bound read-only in every container, as Docker does: writing them changes the
// host's kernel (sysctls, /sys knobs, the sysrq trigger), not the container's.
var readOnlyKernelPaths = []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/sys"}

// makeKernelPathsReadOnly binds each of readOnlyKernelPaths (under root, "" for the host's root) onto
// itself and remounts it, and every mount below it, read-only. Without CAP_SYS_ADMIN the container cannot
// remount them writable again.
func makeKernelPathsReadOnly(root string) error {
	var targets []string
	for _, p := range readOnlyKernelPaths {
		target := filepath.Join("/", root, p)
		if _, err := os.Stat(target); err != nil {
			continue // not on this machine (e.g. /proc/bus)
		}
		if err := unix.Mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", target, err)
		}
		targets = append(targets, target)
	}
	points, err := currentMountPoints()
	if err != nil {
		return err
	}
	for _, p := range points {
		if !underAny(p, targets) {
			continue
		}
		if err := remountReadOnly(p); err != nil {
			return fmt.Errorf("remount %s read-only: %w", p, err)
		}
	}
	return nil
}

func underAny(path string, dirs []string) bool {
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// remountReadOnly makes the bind mount at path read-only, keeping its nosuid/nodev/noexec/atime flags (a
// bind remount that omitted them would clear them, or fail where they are locked).
func remountReadOnly(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for stFlag, msFlag := range map[int64]uintptr{
		unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if int64(st.Flags)&stFlag != 0 {
			flags |= msFlag
		}
	}
	return unix.Mount("", path, "", flags, "")
}

// maskPaths hides each of paths (as seen inside root) under an empty read-only tmpfs: the cluster's own
// directory holds its CA key, the admin and etcd client certificates and every pod's volumes.
func maskPaths(root string, paths []string) error {
	for _, p := range paths {
		target := filepath.Join("/", root, p)
		info, err := os.Stat(target)
		if err != nil || !info.IsDir() {
			continue
		}
		if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
			"size=4k,mode=0755"); err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

// pivotRoot makes root the root of this mount namespace and detaches the old root, so no path — not even
// the classic escape of chroot into a subdirectory and walking `..` from outside it — leads back to the
// host's filesystem (chroot alone only changes this process's view; the host's root stays mounted above).
func pivotRoot(root string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir %s: %w", root, err)
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; it is then unmounted from there.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("enter old root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root private: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// closeExtraFiles marks every descriptor above stderr close-on-exec, so the command inherits only its
// standard streams (the exec helper is itself started through an inherited descriptor).
func closeExtraFiles() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// hostDevices are the device nodes a container's /dev offers (Docker's set); bound from the host's /dev.
var hostDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// privateDev replaces the host's /dev inside root with a small tmpfs holding only hostDevices, a private
// devpts and a private /dev/shm. The host's /dev has its disks (/dev/vda, …): as root a container could
// read and write them raw, and nothing but a device cgroup (which this sandbox does not set up) or a
// missing node stops that.
func privateDev(root string) error {
	dev := filepath.Join(root, "dev")
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, name := range hostDevices {
		target := filepath.Join(dev, name)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o666)
		if err != nil {
			return fmt.Errorf("create %s: %w", target, err)
		}
		f.Close()
		if err := unix.Mount(filepath.Join("/dev", name), target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", name, err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("devpts", filepath.Join(dev, "pts"), "devpts", unix.MS_NOSUID|unix.MS_NOEXEC,
		"newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mount /dev/pts: %w", err)
	}
	if err := unix.Mount("shm", filepath.Join(dev, "shm"), "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC,
		"mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	for name, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd",
		"stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}
