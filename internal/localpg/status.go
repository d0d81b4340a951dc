package localpg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PersistentStatus describes the persistent local cluster of a home.
type PersistentStatus struct {
	Home    string
	DataDir string // "" when there is no cluster yet
	PID     int    // of the running server; 0 when it is not running
	Port    int    // the running server's port, else the recorded one
	URL     string // recorded in home/database_url (with its password), or ""
}

// Running reports whether the server is running.
func (s PersistentStatus) Running() bool { return s.PID != 0 }

// PersistentPostgresStatus reports on the persistent cluster of home (""
// means Home()) without changing anything: whether it exists, runs, where
// and on which port, and the URL recorded for it.
func PersistentPostgresStatus(home string) (PersistentStatus, error) {
	home, err := absHome(home)
	if err != nil {
		return PersistentStatus{}, err
	}
	st := PersistentStatus{Home: home}
	if b, err := os.ReadFile(filepath.Join(home, homeURLFile)); err == nil {
		st.URL = strings.TrimSpace(string(b))
	} else if !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("localpg: read recorded database URL: %w", err)
	}
	st.Port = recordedPort(home)
	r, err := newPGRunner()
	if err != nil {
		return st, err
	}
	if st.DataDir, err = persistentDataDir(home, r, false); err != nil || st.DataDir == "" {
		return st, err
	}
	if pid, port := postmasterStatus(st.DataDir); pid != 0 {
		st.PID, st.Port = pid, port
	}
	return st, nil
}

// postmasterStatus reads dir/postmaster.pid: the pid and port of the
// server running there, or 0, 0 when none is (no file, or a file left by a
// server that died and whose pid is gone or now another program's).
func postmasterStatus(dir string) (pid, port int) {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0, 0
	}
	lines := strings.Split(string(b), "\n")
	pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	if len(lines) >= 4 {
		port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	if !processAlive(pid) || !isPostgresProcess(pid) {
		return 0, 0
	}
	return pid, port
}

// isPostgresProcess reports whether pid runs postgres (true when that
// cannot be told, as without /proc).
func isPostgresProcess(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err != nil || strings.Contains(string(comm), "postgres") || strings.Contains(string(comm), "postmaster")
}

// RecordedDatabaseURL returns the URL recorded in home/database_url ("" home
// means Home()) if its server accepts a connection now. It returns "" and
// no error when no URL is recorded, and an error wrapping ErrNotRunning
// when one is recorded but its server does not answer.
func RecordedDatabaseURL(ctx context.Context, home string) (string, error) {
	home, err := absHome(home)
	if err != nil {
		return "", err
	}
	path := filepath.Join(home, homeURLFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("localpg: read recorded database URL: %w", err)
	}
	dbURL := strings.TrimSpace(string(b))
	if dbURL == "" {
		return "", nil
	}
	if err := ping(ctx, dbURL, 2*time.Second); err != nil {
		return "", fmt.Errorf("localpg: %w: %s (recorded in %s) does not answer: %v; start it with `podflow standalone`, or set DATABASE_URL",
			ErrNotRunning, RedactURL(dbURL), path, err)
	}
	return dbURL, nil
}
