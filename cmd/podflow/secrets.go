package main

import (
	"context"
	"os"

	"github.com/podflow/podflow/internal/daemon"
	"github.com/podflow/podflow/internal/secrets"
	"github.com/podflow/podflow/internal/store"
)

// Secrets is the CLI's secret resolver: podflow.yaml and the environment,
// and the database when st is not nil.
func (a *App) Secrets(st *store.Store) (*secrets.Resolver, error) {
	cfg, err := a.Config()
	if err != nil {
		return nil, err
	}
	return daemon.Secrets(cfg, st)
}

// Vault is the database's variables and connections.
func (a *App) Vault(st *store.Store) (*secrets.Vault, error) {
	r, err := a.Secrets(st)
	if err != nil {
		return nil, err
	}
	return r.Vault, nil
}

// Masker is a masker that knows every secret this process can read, for
// commands that show what tasks wrote (logs, XComs, rendered fields): the
// lines were masked when stored, and showing them masked again covers
// secrets added since. Secrets it cannot decrypt are left out.
func (a *App) Masker(ctx context.Context, st *store.Store) *secrets.Masker {
	r, err := a.Secrets(st)
	if err != nil {
		return secrets.NewMasker(nil)
	}
	_ = r.LoadMasker(ctx, os.Environ())
	return r.Masker
}

// taskSecrets is the resolver for a task the CLI runs itself (test,
// dry-run): the environment and podflow.yaml, and the database's variables
// and connections when a database is configured.
func (a *App) taskSecrets(ctx context.Context) (*secrets.Resolver, func(), error) {
	cfg, err := a.Config()
	if err != nil {
		return nil, nil, err
	}
	if cfg.DatabaseURL == "" {
		r, err := a.Secrets(nil)
		return r, func() {}, err
	}
	st, err := a.Store(ctx)
	if err != nil {
		return nil, nil, err
	}
	r, err := a.Secrets(st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return r, st.Close, nil
}
