package localpg

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoPostgres is wrapped by the error BinDir (and so StartPostgres and
// EnsurePersistentPostgres) returns when no PostgreSQL server binaries are
// installed.
var ErrNoPostgres = errors.New("no PostgreSQL server binaries found")

// BinDir finds the PostgreSQL server binaries (initdb, pg_ctl, postgres):
// $PODFLOW_PG_BIN when set, else the newest /usr/lib/postgresql/*/bin
// (Debian/Ubuntu), else the newest /usr/pgsql-*/bin (RHEL/Fedora), else the
// directory of pg_ctl on PATH. The error wraps ErrNoPostgres and says how to
// get them, or that DATABASE_URL can be set instead.
func BinDir() (string, error) {
	if d := os.Getenv("PODFLOW_PG_BIN"); d != "" {
		if err := checkBinDir(d); err != nil {
			return "", fmt.Errorf("localpg: PODFLOW_PG_BIN=%s: %w", d, err)
		}
		return filepath.Abs(d)
	}
	var candidates []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"} {
		m, _ := filepath.Glob(pattern)
		sort.SliceStable(m, func(i, j int) bool { return versionLess(versionOf(m[j]), versionOf(m[i])) })
		candidates = append(candidates, m...)
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	for _, c := range candidates {
		if checkBinDir(c) == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("localpg: %w (initdb, pg_ctl and postgres; looked in /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin and PATH): "+
		"install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; Fedora/RHEL: dnf install postgresql-server; macOS: brew install postgresql), "+
		"set PODFLOW_PG_BIN to its bin directory, or set DATABASE_URL to use an existing server", ErrNoPostgres)
}

func checkBinDir(dir string) error {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNoPostgres, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%w: %s is not an executable file", ErrNoPostgres, filepath.Join(dir, name))
		}
	}
	return nil
}

// versionOf extracts the version numbers from .../postgresql/15/bin or
// /usr/pgsql-9.6/bin.
func versionOf(binDir string) []int {
	base := filepath.Base(filepath.Dir(binDir))
	base = strings.TrimPrefix(base, "pgsql-")
	var v []int
	for _, part := range strings.Split(base, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			break
		}
		v = append(v, n)
	}
	return v
}

func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}
