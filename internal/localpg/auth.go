package localpg

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// How a local cluster is locked: the superuser "postgres" has a random
// password, kept in the data directory (private to the server's OS user),
// and pg_hba.conf asks for it (SCRAM-SHA-256) on the unix socket and on
// 127.0.0.1 alike. The socket directory is the data directory (mode 0700),
// so another OS user can reach the server only over TCP, where the
// password stops it. Clusters made before this had "trust" lines; they are
// migrated the first time podflow finds them (lockDown).

const (
	superuser    = "postgres"
	passwordFile = "podflow.password" // in the data directory, mode 0600
	hbaHeader    = "# written by podflow (internal/localpg)\n"
)

// hbaContents is the pg_hba.conf of every cluster podflow makes.
const hbaContents = hbaHeader +
	"# Every connection needs the password of its role (podflow.password for\n" +
	"# postgres); the server listens on 127.0.0.1 and a socket in this directory only.\n" +
	"local all all scram-sha-256\n" +
	"host all all 127.0.0.1/32 scram-sha-256\n" +
	"local replication all scram-sha-256\n" +
	"host replication all 127.0.0.1/32 scram-sha-256\n"

// newPassword returns a random password of 192 bits, hex encoded (so it
// needs no escaping in a URL, a SQL literal or a password file).
func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("localpg: generate a password: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// readPassword returns the superuser password recorded in dataDir, or ""
// when none is recorded (a cluster made before passwords).
func readPassword(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, passwordFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("localpg: read the local PostgreSQL password: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writePrivateFile writes path atomically, mode 0600, owned by the
// server's OS user.
func writePrivateFile(path string, data []byte, r *pgRunner) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("localpg: write %s: %w", path, err)
	}
	if err := r.chown(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("localpg: write %s: %w", path, err)
	}
	return nil
}

// hbaTrusts reports whether a pg_hba.conf lets any connection in without a
// password (method "trust").
func hbaTrusts(hba []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(hba))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		// TYPE DATABASE USER [ADDRESS [MASK]] METHOD [OPTIONS]: the method is
		// never among the first three fields.
		for i := 3; i < len(f); i++ {
			if f[i] == "trust" {
				return true
			}
		}
	}
	return false
}

// adminURL is the superuser's URL of database "postgres" on 127.0.0.1:port.
func adminURL(port int, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		Host:     "127.0.0.1:" + strconv.Itoa(port),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	if password == "" {
		u.User = url.User(superuser)
	} else {
		u.User = url.UserPassword(superuser, password)
	}
	return u.String()
}

// RedactURL returns a database URL (or keyword/value connection string)
// with its password replaced by "xxxxx", for printing.
func RedactURL(connString string) string {
	if u, err := url.Parse(connString); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	var out []string
	for _, kv := range strings.Fields(connString) {
		if k, _, ok := strings.Cut(kv, "="); ok && k == "password" {
			kv = "password=xxxxx"
		}
		out = append(out, kv)
	}
	return strings.Join(out, " ")
}

// lockDown makes sure the cluster in dataDir, running on port, admits only
// connections that give the superuser's password, and returns that
// password. A cluster that still trusts local connections (made by an
// older podflow) is migrated: a password is generated and recorded, set on
// the role through the still-trusted connection, pg_hba.conf is rewritten
// and the server reloaded; migrated is then true. rotate replaces a
// password that is known elsewhere (a cluster copied from the cached
// template) with a fresh one.
func lockDown(ctx context.Context, dataDir string, port int, r *pgRunner, rotate bool) (password string, migrated bool, err error) {
	hbaPath := filepath.Join(dataDir, "pg_hba.conf")
	hba, err := os.ReadFile(hbaPath)
	if err != nil {
		return "", false, fmt.Errorf("localpg: %w", err)
	}
	password, err = readPassword(dataDir)
	if err != nil {
		return "", false, err
	}
	trusts := hbaTrusts(hba)
	if !trusts && !rotate {
		if password == "" {
			return "", false, fmt.Errorf("localpg: data directory %s has no %s and its pg_hba.conf does not trust local connections: podflow cannot log in to this cluster; point DATABASE_URL at it, or move the directory away to let podflow make a new one", dataDir, passwordFile)
		}
		return password, false, nil
	}
	current := password
	if (trusts && password == "") || rotate {
		if password, err = newPassword(); err != nil {
			return "", false, err
		}
	}
	if trusts {
		// Recorded before the role has it: should we stop half-way, the
		// next start finds the trust lines and sets this password again.
		if err := writePrivateFile(filepath.Join(dataDir, passwordFile), []byte(password+"\n"), r); err != nil {
			return "", false, err
		}
	}
	if err := setSuperuserPassword(ctx, adminURL(port, current), password); err != nil {
		return "", false, err
	}
	if !trusts { // rotate
		return password, false, writePrivateFile(filepath.Join(dataDir, passwordFile), []byte(password+"\n"), r)
	}
	if err := writePrivateFile(hbaPath, []byte(hbaContents), r); err != nil {
		return "", false, err
	}
	if err := reloadAndWaitForPassword(ctx, adminURL(port, password), port); err != nil {
		return "", false, fmt.Errorf("localpg: lock down the PostgreSQL in %s: %w", dataDir, err)
	}
	return password, true, nil
}

func setSuperuserPassword(ctx context.Context, connURL, password string) error {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return fmt.Errorf("localpg: connect to set the local PostgreSQL password: %w", err)
	}
	defer conn.Close(context.Background())
	// ALTER ROLE takes no parameters; the password is hex, the quoting is
	// only a second line of defence.
	stmt := "SET password_encryption = 'scram-sha-256'; ALTER ROLE " + pgx.Identifier{superuser}.Sanitize() +
		" PASSWORD '" + strings.ReplaceAll(password, "'", "''") + "'"
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("localpg: set the local PostgreSQL password: %w", err)
	}
	return nil
}

// reloadAndWaitForPassword reloads the server's configuration and waits
// until it refuses a connection without a password: pg_reload_conf only
// signals the postmaster, which rereads pg_hba.conf a moment later.
func reloadAndWaitForPassword(ctx context.Context, connURL string, port int) error {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	_, err = conn.Exec(ctx, "SELECT pg_reload_conf()")
	conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := ping(ctx, adminURL(port, ""), 2*time.Second)
		if IsAuthFailure(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the server still admits connections without a password after reloading pg_hba.conf (last attempt: %v)", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// IsAuthFailure reports whether err is the server refusing a login: a wrong
// or missing password (SQLSTATE 28P01) or no pg_hba.conf entry (28000).
func IsAuthFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}
