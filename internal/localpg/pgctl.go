package localpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// maxSocketDir is the longest Dir that fits a unix socket path
// (Dir/.s.PGSQL.65535.lock) into sun_path.
const maxSocketDir = 107 - len("/.s.PGSQL.65535.lock")

func (p *Postgres) pgCtlStart(ctx context.Context, cfg pgStartConfig, port int) error {
	o := []string{"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "max_connections=" + strconv.Itoa(cfg.maxConnections)}
	if len(p.Dir) <= maxSocketDir {
		o = append(o, "-k", shellQuote(p.Dir))
	} else {
		o = append(o, "-k", "''") // no unix socket: its path would be too long
	}
	if !cfg.Fsync {
		o = append(o, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	args := []string{"start", "-D", p.Dir, "-w", "-t", "300", "-o", strings.Join(o, " ")}
	if cfg.Log == nil {
		args = append(args, "-l", filepath.Join(p.Dir, "postgres.log"))
	}
	cmd := p.runner.command(ctx, filepath.Join(p.bin, "pg_ctl"), args...)
	var out bytes.Buffer
	var tail *tailBuffer
	if cfg.Log == nil {
		cmd.Stdout, cmd.Stderr = &out, &out
	} else {
		// The server inherits pg_ctl's stdout and stderr. They must be a
		// pipe we drain ourselves: with an io.Writer, exec would wait for the
		// server to close them before pg_ctl's Wait returns.
		pr, pw, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("localpg: pipe: %w", err)
		}
		defer pw.Close()
		tail = &tailBuffer{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer pr.Close()
			io.Copy(io.MultiWriter(tail, errorless{cfg.Log}), pr)
		}()
		p.logDone = done
		cmd.Stdout, cmd.Stderr = pw, pw
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localpg: pg_ctl start: %w", err)
	}
	if f, ok := cmd.Stdout.(*os.File); ok {
		f.Close()
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("localpg: pg_ctl start -D %s (port %d, as %s): %w\n%s%s", p.Dir, port, p.runner.username, err,
			bytes.TrimSpace(out.Bytes()), p.logTail(tail))
	}
	return nil
}

func (p *Postgres) pgCtlStop(ctx context.Context, mode string) error {
	pid := postmasterPID(p.Dir)
	cmd := p.runner.command(ctx, filepath.Join(p.bin, "pg_ctl"), "stop", "-D", p.Dir, "-m", mode, "-w", "-t", "120")
	out, err := cmd.CombinedOutput()
	if err == nil {
		// pg_ctl returns when postmaster.pid is gone, a moment before the
		// postmaster exits: wait for that too.
		for deadline := time.Now().Add(5 * time.Second); pid != 0 && processAlive(pid) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}
	if _, serr := os.Stat(filepath.Join(p.Dir, "postmaster.pid")); errors.Is(serr, os.ErrNotExist) {
		return nil // not running
	}
	return fmt.Errorf("localpg: pg_ctl stop -m %s -D %s: %w\n%s", mode, p.Dir, err, bytes.TrimSpace(out))
}

// postmasterPID is the pid recorded in dir/postmaster.pid, or 0.
func postmasterPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return pid
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// pgEnv is our environment without PG* variables, in the C locale.
func pgEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}
