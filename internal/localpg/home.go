package localpg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Home returns podflow's home directory: $PODFLOW_HOME, or ~/.podflow.
func Home() string {
	if h := os.Getenv("PODFLOW_HOME"); h != "" {
		return h
	}
	if d, err := os.UserHomeDir(); err == nil && d != "" {
		return filepath.Join(d, ".podflow")
	}
	return ".podflow"
}

func absHome(home string) (string, error) {
	if home == "" {
		home = Home()
	}
	h, err := filepath.Abs(home)
	if err != nil {
		return "", fmt.Errorf("localpg: podflow home %q: %w", home, err)
	}
	return h, nil
}

// persistentDataDir resolves home/postgres. When it does not exist yet and
// create is set, it is made: a directory, or, when the OS user running the
// server cannot reach home, a symlink to a directory under
// /var/lib/podflow. Without create, a missing one yields "".
func persistentDataDir(home string, r *pgRunner, create bool) (string, error) {
	link := filepath.Join(home, homePGDir)
	fi, err := os.Lstat(link)
	switch {
	case err == nil && fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(link)
		if err != nil {
			return "", fmt.Errorf("localpg: %w", err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(home, target)
		}
		return target, nil
	case err == nil:
		return link, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("localpg: %w", err)
	case !create:
		return "", nil
	}
	if r.checkReachable(link) == nil {
		return link, nil
	}
	sum := sha256.Sum256([]byte(home))
	dir := filepath.Join(relocatedBase, "postgres-"+hex.EncodeToString(sum[:6]))
	// Others may pass through relocatedBase (postgres must), not list it.
	if err := os.MkdirAll(relocatedBase, 0o711); err != nil {
		return "", fmt.Errorf("localpg: data directory for %s: %w", home, err)
	}
	if err := os.Chmod(relocatedBase, 0o711); err != nil {
		return "", fmt.Errorf("localpg: data directory for %s: %w", home, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("localpg: data directory for %s: %w", home, err)
	}
	if err := r.chown(dir); err != nil {
		return "", err
	}
	if err := os.Symlink(dir, link); err != nil {
		return "", fmt.Errorf("localpg: data directory for %s: %w", home, err)
	}
	return dir, nil
}

// tightenHome closes home, its lock file and its recorded URL to other OS
// users and says what it changed. home is 0700, except as root when
// home/postgres is a data directory (not a symlink) that an older podflow
// made there: 0710 with group postgres then, so the server can reach it.
func tightenHome(home string, r *pgRunner) (changed []string, err error) {
	want, group := os.FileMode(0o700), -1
	if fi, err := os.Lstat(filepath.Join(home, homePGDir)); err == nil && fi.IsDir() && r.asOtherUser() {
		want, group = 0o710, r.gid
	}
	if group >= 0 {
		if err := os.Chown(home, -1, group); err != nil {
			return nil, fmt.Errorf("localpg: give %s to group postgres: %w", home, err)
		}
	}
	fi, err := os.Stat(home)
	if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	if fi.Mode().Perm() != want {
		if err := os.Chmod(home, want); err != nil {
			return nil, fmt.Errorf("localpg: close podflow home %s to other users: %w", home, err)
		}
		what := fmt.Sprintf("%s is now mode %#o (was %#o)", home, want, fi.Mode().Perm())
		if group >= 0 {
			what += " with group postgres, so that the server can reach its data directory inside"
		}
		changed = append(changed, what)
	}
	for _, name := range []string{homeURLFile, homePGLock} {
		path := filepath.Join(home, name)
		fi, err := os.Stat(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("localpg: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return nil, fmt.Errorf("localpg: close %s to other users: %w", path, err)
			}
			changed = append(changed, fmt.Sprintf("%s is now mode 0600 (was %#o)", name, fi.Mode().Perm()))
		}
	}
	return changed, nil
}

// tightenDataDir makes an existing data directory 0700 and owned by the
// server's OS user (PostgreSQL itself refuses a group- or world-writable
// one, but not one another user may list or a relocated one owned by root).
func tightenDataDir(dir string, r *pgRunner) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	if err := r.chown(dir); err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("localpg: close data directory %s to other users: %w", dir, err)
		}
	}
	return nil
}
