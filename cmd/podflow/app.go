package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/localenv"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/builtin"
)

// App holds what every command shares: flags, configuration and lazily built
// dependencies.
type App struct {
	flags config.Flags
	cfg   *config.Config
	ops   *operators.Registry
}

func (a *App) bindFlags(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&a.flags.Config, "config", "", "podflow.yaml to read (default ./podflow.yaml when present; env PODFLOW_CONFIG)")
	pf.StringVar(&a.flags.DagsFolder, "dags-folder", "", "DAGs folder (env PODFLOW_DAGS_FOLDER, default ./dags)")
	pf.StringVar(&a.flags.DatabaseURL, "database-url", "", "PostgreSQL URL (env DATABASE_URL)")
}

// Config resolves the configuration once.
func (a *App) Config() (*config.Config, error) {
	if a.cfg != nil {
		return a.cfg, nil
	}
	cfg, err := config.Load(a.flags, os.Getenv)
	if err != nil {
		return nil, err
	}
	a.cfg = cfg
	return cfg, nil
}

// DagsFolder is --dags-folder, else PODFLOW_DAGS_FOLDER, else dags_folder in
// podflow.yaml, else ./dags.
func (a *App) DagsFolder() string {
	cfg, err := a.Config()
	if err != nil {
		if a.flags.DagsFolder != "" {
			return a.flags.DagsFolder
		}
		return config.DefaultDagsFolder
	}
	return cfg.DagsFolder
}

// Operators is the operator registry.
func (a *App) Operators() *operators.Registry {
	if a.ops == nil {
		a.ops = builtin.Registry(builtin.Deps{Logger: a.Logger()})
	}
	return a.ops
}

// Registry is the schema registry the DAG parser validates against.
func (a *App) Registry() *dag.Registry { return a.Operators().Schemas() }

// Logger is the CLI's logger (stderr, warnings and up).
func (a *App) Logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "podflow", Level: hclog.Warn, Output: os.Stderr})
}

// DatabaseURL is --database-url, DATABASE_URL, database_url in podflow.yaml,
// else the persistent local Postgres recorded under PODFLOW_HOME by
// `podflow standalone`.
func (a *App) DatabaseURL(ctx context.Context) (string, error) {
	cfg, err := a.Config()
	if err != nil {
		return "", err
	}
	if cfg.DatabaseURL != "" {
		return cfg.DatabaseURL, nil
	}
	url, err := localenv.RecordedDatabaseURL(ctx, localenv.Home())
	if err != nil {
		return "", err
	}
	if url == "" {
		return "", fmt.Errorf("no database: set DATABASE_URL (or --database-url), or start `podflow standalone` once to create the local one under %s", localenv.Home())
	}
	return url, nil
}

// Store connects to the database and checks its schema.
func (a *App) Store(ctx context.Context) (*store.Store, error) {
	url, err := a.DatabaseURL(ctx)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	s := store.New(pool)
	if err := s.CheckSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}
