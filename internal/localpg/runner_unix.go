//go:build unix

package localpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// pgRunner runs the PostgreSQL server programs as the right OS user: the
// current user, or the "postgres" user when we are root (initdb, pg_ctl and
// postgres refuse to run as root).
type pgRunner struct {
	cred     *syscall.Credential // nil: run as the current user
	username string
	uid, gid int
	groups   []int
}

func newPGRunner() (*pgRunner, error) {
	if os.Geteuid() != 0 {
		return &pgRunner{uid: os.Geteuid(), gid: os.Getegid(), username: "current user"}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("localpg: running as root, but PostgreSQL refuses to run as root and there is no %q OS user to run it as (%v); "+
			"install the PostgreSQL server package (it creates the user), create one (useradd --system --home-dir /var/lib/postgresql postgres), "+
			"run as a non-root user, or set DATABASE_URL", "postgres", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("localpg: OS user postgres has a non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, errors.New("localpg: OS user postgres has uid 0; PostgreSQL refuses to run as root")
	}
	r := &pgRunner{username: "postgres", uid: uid, gid: gid}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.Atoi(s); err == nil {
				r.groups = append(r.groups, g)
				cred.Groups = append(cred.Groups, uint32(g))
			}
		}
	}
	r.cred = cred
	return r, nil
}

// asOtherUser reports whether programs run as a different OS user than ours.
func (r *pgRunner) asOtherUser() bool { return r.cred != nil }

// command builds a command that runs as the runner's user, without our
// PG* environment (PGDATA, PGPORT, ... would change what the tools do) and
// in a neutral locale.
func (r *pgRunner) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	if r.cred != nil {
		// Our working directory may not be reachable by the other user.
		cmd.Dir = "/"
	}
	cmd.Env = pgEnv()
	return cmd
}

// detach makes cmd start in its own session, so that a Ctrl-C sent to our
// process group does not reach it.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr.Setsid = true }

// chown gives path to the runner's user (no-op when that is us).
func (r *pgRunner) chown(path string) error {
	if r.cred == nil {
		return nil
	}
	if err := os.Lchown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("localpg: chown %s to OS user postgres: %w", path, err)
	}
	return nil
}

// checkReachable returns an error when the runner's user cannot reach dir
// because one of its ancestors lacks search (x) permission for that user.
// It looks at mode bits only (not ACLs), so it may reject a directory made
// reachable by an ACL.
func (r *pgRunner) checkReachable(dir string) error {
	if r.cred == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("localpg: stat %s: %w", p, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			var bit os.FileMode
			switch {
			case int(st.Uid) == r.uid:
				bit = 0o100
			case r.inGroup(int(st.Gid)):
				bit = 0o010
			default:
				bit = 0o001
			}
			if mode&bit == 0 {
				return fmt.Errorf("localpg: PostgreSQL runs as OS user postgres (we are root), which cannot reach %s: "+
					"directory %s (mode %v, owner uid %d) is not searchable by it; use a directory under /tmp or /var/lib, or grant access (chmod o+x %s)",
					dir, p, mode, st.Uid, p)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// ownsPrivateDir reports whether path is a directory (not a symlink) owned
// by the runner's user and closed to everyone else, holding a cluster.
func (r *pgRunner) ownsPrivateDir(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != r.uid {
		return false
	}
	_, err = os.Stat(filepath.Join(path, "PG_VERSION"))
	return err == nil
}

func (r *pgRunner) inGroup(gid int) bool {
	if gid == r.gid {
		return true
	}
	for _, g := range r.groups {
		if g == gid {
			return true
		}
	}
	return false
}

// processAlive reports whether a process with this pid exists and is not
// a zombie (an exited server whose parent, often init in a container, has
// not reaped it yet).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		// pid (comm) state ...; comm may contain spaces and parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return false
		}
	}
	return true
}

// lockFile takes an exclusive flock on path, waiting until ctx is done.
// flock locks belong to the open file description, so this also excludes
// other goroutines of this process.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("localpg: open lock file: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("localpg: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("localpg: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
