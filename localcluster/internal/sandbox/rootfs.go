package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// enterPrivateRoot gives the container a filesystem of its own without an image: a copy-on-write view of
// the host's root (overlayfs, lower "/", upper on a tmpfs mounted at scratch in this mount namespace) with
// every other mount (/proc of the pod, /dev, /sys, …) bound again inside it. It returns the new root, which
// the caller binds the volumes into and pivots to. Nothing written outside a volume reaches the host, and
// it all disappears with the container's mount namespace.
func enterPrivateRoot(scratch string) (string, error) {
	mounts, err := currentMountPoints()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return "", err
	}
	if err := syscall.Mount("tmpfs", scratch, "tmpfs", 0, "mode=0755"); err != nil {
		return "", fmt.Errorf("mount tmpfs: %w", err)
	}
	upper, work, root := filepath.Join(scratch, "upper"), filepath.Join(scratch, "work"), filepath.Join(scratch, "root")
	for _, dir := range []string{upper, work, root} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", err
		}
	}
	opts := fmt.Sprintf("lowerdir=/,upperdir=%s,workdir=%s", upper, work)
	if err := syscall.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount overlay of /: %w", err)
	}
	for _, p := range mounts {
		if p == "/" || p == scratch || strings.HasPrefix(p, scratch+"/") {
			continue
		}
		target := filepath.Join(root, p)
		if err := ensureMountPoint(p, target); err != nil {
			continue // a mount point we cannot recreate (e.g. under a read-only mount) is left out
		}
		if err := syscall.Mount(p, target, "", syscall.MS_BIND, ""); err != nil {
			continue
		}
	}
	return root, nil
}

func ensureMountPoint(source, target string) error {
	info, err := os.Stat(source)
	if err != nil {
		return err
	}
	if info.IsDir() {
		return os.MkdirAll(target, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	return nil
}

// currentMountPoints lists this mount namespace's mount points in mount order (parents first).
func currentMountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	var points []string
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) > 4 {
			points = append(points, unescapeOctal(fields[4]))
		}
	}
	return points, scanner.Err()
}

// unescapeOctal undoes mountinfo's \ooo escapes (spaces, tabs, newlines, backslashes in paths).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// resolveInRoot turns path, as the container will see it after pivoting to root, into a host path under root,
// following symbolic links the way they resolve inside root (/var/run → /run must not lead to the
// host's /run).
func resolveInRoot(root, path string) (string, error) {
	cur := "/"
	parts := strings.Split(filepath.Clean("/"+path), "/")
	for links := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, part)
		info, err := os.Lstat(filepath.Join(root, next))
		if err != nil || info.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("%s: too many symbolic links", path)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return filepath.Join(root, cur), nil
}
