package localpg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// templateDir is where initdb'd throwaway clusters are cached: one per
// server build and OS user, in the temporary directory (so gone after a
// reboot). Only a directory owned by the user the server runs as, and
// private to it, is used.
func (p *Postgres) templateDir() string {
	key := p.bin + "|scram" // templates of older podflows trusted local connections
	if fi, err := os.Stat(filepath.Join(p.bin, "postgres")); err == nil {
		key += fmt.Sprintf("|%d|%d", fi.Size(), fi.ModTime().UnixNano())
	}
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(os.TempDir(), fmt.Sprintf("podflow-pg-template-%d-%s", p.runner.uid, hex.EncodeToString(sum[:6])))
}

// saveTemplate caches the freshly initdb'd cluster src as tpl, best
// effort: copied aside, then renamed into place (the first of concurrent
// savers wins).
func (p *Postgres) saveTemplate(ctx context.Context, src, tpl string) {
	if _, err := os.Lstat(tpl); err == nil {
		return
	}
	staging, err := os.MkdirTemp(filepath.Dir(tpl), filepath.Base(tpl)+".tmp-")
	if err != nil {
		return
	}
	if p.runner.chown(staging) != nil || p.copyDir(ctx, src, staging) != nil || os.Rename(staging, tpl) != nil {
		os.RemoveAll(staging)
	}
}
