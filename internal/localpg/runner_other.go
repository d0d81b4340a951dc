//go:build !unix

package localpg

import (
	"context"
	"errors"
	"os/exec"
)

var errPGUnsupported = errors.New("localpg: a local PostgreSQL is only supported on Unix; set DATABASE_URL")

type pgRunner struct {
	username string
	uid, gid int
}

func newPGRunner() (*pgRunner, error)                  { return nil, errPGUnsupported }
func (r *pgRunner) asOtherUser() bool                  { return false }
func (r *pgRunner) chown(string) error                 { return errPGUnsupported }
func (r *pgRunner) checkReachable(string) error        { return errPGUnsupported }
func (r *pgRunner) ownsPrivateDir(string) bool         { return false }
func detach(*exec.Cmd)                                 {}
func processAlive(int) bool                            { return false }
func lockFile(context.Context, string) (func(), error) { return nil, errPGUnsupported }
func (r *pgRunner) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}
