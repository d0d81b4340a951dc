package localpg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// watchdogScript stops the server when the process $1 is gone. kill -0 fails
// with EPERM when we run as postgres and the owner is root: /proc decides then.
const watchdogScript = `owner=$1 pgctl=$2 dir=$3 rmdir=$4
alive() { kill -0 "$owner" 2>/dev/null || [ -d "/proc/$owner" ]; }
while alive; do sleep 1; done
"$pgctl" stop -D "$dir" -m immediate -w -t 60 >/dev/null 2>&1
if [ "$rmdir" = 1 ]; then rm -rf "$dir"; fi
`

func (p *Postgres) startWatchdog() error {
	rm := "0"
	if p.removeDir {
		rm = "1"
	}
	cmd := p.runner.command(context.Background(), "/bin/sh", "-c", watchdogScript, "podflow-pg-watchdog",
		strconv.Itoa(os.Getpid()), filepath.Join(p.bin, "pg_ctl"), p.Dir, rm)
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localpg: start postgres watchdog: %w", err)
	}
	p.watchdog = cmd
	return nil
}

func (p *Postgres) stopWatchdog() {
	if p.watchdog == nil {
		return
	}
	p.watchdog.Process.Kill()
	p.watchdog.Wait()
	p.watchdog = nil
}
