package localpg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Postgres is a PostgreSQL server started by StartPostgres.
type Postgres struct {
	Dir      string // data directory (also holds the unix socket and, by default, postgres.log)
	Port     int    // TCP port on 127.0.0.1
	URL      string // postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres?sslmode=disable
	Password string // of the superuser postgres, also in Dir/podflow.password

	bin          string
	runner       *pgRunner
	removeDir    bool          // Dir was made by StartPostgres: Stop removes it
	fromTemplate bool          // Dir is a copy of the cached template: its password is not its own
	migrated     bool          // Dir trusted local connections until this start locked it down
	watchdog     *exec.Cmd     // stops the server if this process dies without Stop
	logDone      chan struct{} // closed when the server's output pipe is drained

	mu      sync.Mutex
	stopped bool
}

// PostgresOptions configures StartPostgres.
type PostgresOptions struct {
	// Dir is the data directory; initdb'd if it holds no cluster yet. Empty:
	// a new temporary directory, removed by Stop.
	Dir string
	// Port on 127.0.0.1; 0 picks a free port.
	Port int
	// Fsync false runs with fsync, synchronous_commit and full_page_writes
	// off (and initdb --no-sync): fast, for throwaway clusters only.
	Fsync bool
	// Log receives the server's output (written from another goroutine until
	// the server stops). Nil: appended to Dir/postgres.log.
	Log io.Writer
}

type pgStartConfig struct {
	PostgresOptions
	maxConnections int
	// watchdog: stop the server (and remove Dir if StartPostgres made it)
	// when this process exits without calling Stop.
	watchdog bool
}

// StartPostgres initdb's opts.Dir if it holds no cluster (superuser
// "postgres" with a random password, SCRAM-SHA-256 authentication for every
// connection, UTF8, C locale), starts the server with pg_ctl on
// 127.0.0.1:opts.Port (unix socket in Dir, max_connections 300) and waits
// until it accepts connections. A Dir made by an older podflow, whose
// pg_hba.conf trusts local connections, gets a password and loses its
// trust lines (see lockDown). As root, the server runs as OS user
// "postgres" and Dir is given to that user.
//
// The server is tied to this process: Stop it; if the process dies first, a
// small watchdog process stops it (and removes a temporary Dir) within about
// a second.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	return startPostgres(ctx, pgStartConfig{PostgresOptions: opts, maxConnections: 300, watchdog: true})
}

func startPostgres(ctx context.Context, cfg pgStartConfig) (_ *Postgres, err error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	r, err := newPGRunner()
	if err != nil {
		return nil, err
	}
	p := &Postgres{bin: bin, runner: r}
	if cfg.Dir == "" {
		if p.Dir, err = os.MkdirTemp("", "podflow-pg-"); err != nil {
			return nil, fmt.Errorf("localpg: create data directory: %w", err)
		}
		p.removeDir = true
	} else {
		if p.Dir, err = filepath.Abs(cfg.Dir); err != nil {
			return nil, fmt.Errorf("localpg: data directory: %w", err)
		}
		if err := os.MkdirAll(p.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("localpg: create data directory: %w", err)
		}
	}
	started := false
	defer func() {
		if err == nil {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if started {
			p.pgCtlStop(cctx, "immediate")
		}
		p.stopWatchdog()
		if p.removeDir {
			os.RemoveAll(p.Dir)
		}
	}()
	if err := r.checkReachable(p.Dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(p.Dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := p.initdb(ctx, cfg.Fsync); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("localpg: %w", err)
	}
	if cfg.watchdog {
		if err := p.startWatchdog(); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		port := cfg.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		started = true
		err = p.pgCtlStart(ctx, cfg, port)
		if err == nil {
			p.Port = port
			break
		}
		// Another process may have taken the free port between our probe and
		// the server's bind: try another one.
		if cfg.Port != 0 || attempt == 5 || !strings.Contains(err.Error(), "could not bind") && !strings.Contains(err.Error(), "could not create any TCP/IP sockets") {
			return nil, err
		}
	}
	recorded, err := readPassword(p.Dir)
	if err != nil {
		return nil, err
	}
	if err := waitAccepting(ctx, adminURL(p.Port, recorded), 30*time.Second); err != nil {
		return nil, fmt.Errorf("localpg: postgres in %s started but does not accept connections: %w%s", p.Dir, err, p.logTail(nil))
	}
	if p.Password, p.migrated, err = lockDown(ctx, p.Dir, p.Port, r, p.fromTemplate); err != nil {
		return nil, err
	}
	p.URL = adminURL(p.Port, p.Password)
	return p, nil
}

// Stop stops the server (pg_ctl stop -m fast; -m immediate if that fails)
// and, if StartPostgres made Dir, removes it. Stopping a stopped server is a
// no-op.
func (p *Postgres) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	err := p.pgCtlStop(ctx, "fast")
	if err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if p.pgCtlStop(cctx, "immediate") == nil {
			err = nil
		}
		cancel()
	}
	if err != nil {
		return err
	}
	p.stopped = true
	p.stopWatchdog()
	if p.logDone != nil {
		select {
		case <-p.logDone:
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	if p.removeDir {
		if err := os.RemoveAll(p.Dir); err != nil {
			return fmt.Errorf("localpg: remove data directory: %w", err)
		}
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localpg: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether 127.0.0.1:port can be listened on now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
