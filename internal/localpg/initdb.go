package localpg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// initdb creates the cluster in a sibling directory and renames it to
// p.Dir (which must be empty), so that an interrupted initdb never leaves a
// half-made cluster behind.
func (p *Postgres) initdb(ctx context.Context, fsync bool) error {
	entries, err := os.ReadDir(p.Dir)
	if err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("localpg: data directory %s is not empty but holds no PostgreSQL cluster (no PG_VERSION); empty it or choose another", p.Dir)
	}
	tmp := p.Dir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil { // left by an interrupted initdb
		return fmt.Errorf("localpg: %w", err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("localpg: create initdb directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := p.runner.chown(tmp); err != nil {
		return err
	}
	// A throwaway cluster is a copy of a cached, freshly initdb'd one when
	// there is one: copying takes a fraction of initdb's seconds. The copy's
	// password is the template's; startPostgres replaces it once running.
	tpl := p.templateDir()
	if !fsync && p.runner.ownsPrivateDir(tpl) {
		if err := p.copyDir(ctx, tpl, tmp); err == nil {
			p.fromTemplate = true
		} else if err := resetDir(tmp, p.runner); err != nil {
			return err
		}
	}
	if !p.fromTemplate {
		if err := p.initdbWithPassword(ctx, tmp, fsync); err != nil {
			return err
		}
		if !fsync {
			p.saveTemplate(ctx, tmp, tpl)
		}
	}
	if err := os.Remove(p.Dir); err != nil {
		return fmt.Errorf("localpg: replace data directory: %w", err)
	}
	if err := os.Rename(tmp, p.Dir); err != nil {
		return fmt.Errorf("localpg: move initdb'd cluster into place: %w", err)
	}
	return nil
}

// initdbWithPassword runs initdb in dir with a new random password for
// the superuser, which it records in dir/podflow.password, and podflow's
// pg_hba.conf (password needed on every connection).
func (p *Postgres) initdbWithPassword(ctx context.Context, dir string, fsync bool) error {
	password, err := newPassword()
	if err != nil {
		return err
	}
	// initdb reads the password from a file, which the server's OS user
	// must be able to open; a fresh one (O_EXCL, 0600) beside dir.
	pwFile, err := os.CreateTemp(filepath.Dir(dir), ".podflow-initdb-pw-")
	if err != nil {
		return fmt.Errorf("localpg: initdb password file: %w", err)
	}
	defer os.Remove(pwFile.Name())
	_, err = pwFile.WriteString(password + "\n")
	if cerr := pwFile.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("localpg: initdb password file: %w", err)
	}
	if err := p.runner.chown(pwFile.Name()); err != nil {
		return err
	}
	args := []string{"-D", dir, "-U", superuser, "--auth=scram-sha-256", "--pwfile=" + pwFile.Name(), "--encoding=UTF8", "--locale=C"}
	if !fsync {
		args = append(args, "--no-sync")
	}
	cmd := p.runner.command(ctx, filepath.Join(p.bin, "initdb"), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("localpg: initdb %s (as %s): %w\n%s", p.Dir, p.runner.username, err, bytes.TrimSpace(out))
	}
	if err := writePrivateFile(filepath.Join(dir, "pg_hba.conf"), []byte(hbaContents), p.runner); err != nil {
		return err
	}
	return writePrivateFile(filepath.Join(dir, passwordFile), []byte(password+"\n"), p.runner)
}

// resetDir makes dir an empty directory owned by the server's user.
func resetDir(dir string, r *pgRunner) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("localpg: %w", err)
	}
	return r.chown(dir)
}

// copyDir copies the contents of src into the existing directory dst, as
// the user the server runs as.
func (p *Postgres) copyDir(ctx context.Context, src, dst string) error {
	cmd := p.runner.command(ctx, "cp", "-a", src+"/.", dst+"/")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("localpg: cp -a %s %s: %w\n%s", src, dst, err, bytes.TrimSpace(out))
	}
	return nil
}
