package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/daemon"
	"github.com/podflow/podflow/internal/localpg"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/suggest"
	"github.com/podflow/podflow/operators"
)

// App holds what every command shares: flags, configuration and lazily built
// dependencies.
type App struct {
	flags config.Flags
	cfg   *config.Config
	ops   *operators.Registry
	dbURL string // resolved once: finding the local one pings it
}

func (a *App) bindFlags(root *cobra.Command) {
	daemon.BindCommonFlags(root.PersistentFlags(), &a.flags)
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
		a.ops = daemon.Operators(a.Logger())
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
	if a.dbURL != "" {
		return a.dbURL, nil
	}
	cfg, err := a.Config()
	if err != nil {
		return "", err
	}
	if cfg.DatabaseURL != "" {
		a.dbURL = cfg.DatabaseURL
		return a.dbURL, nil
	}
	url, err := localpg.RecordedDatabaseURL(ctx, localpg.Home())
	if err != nil {
		return "", err
	}
	if url == "" {
		return "", fmt.Errorf("no database: set DATABASE_URL (or --database-url), or start `podflow standalone` once to create the local one under %s", localpg.Home())
	}
	a.dbURL = url
	return url, nil
}

// Pool connects to the database.
func (a *App) Pool(ctx context.Context) (*pgxpool.Pool, error) { return a.pool(ctx, 0) }

// pool connects to the database with at most maxConns connections (0: the
// pool's default).
func (a *App) pool(ctx context.Context, maxConns int32) (*pgxpool.Pool, error) {
	url, err := a.DatabaseURL(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return pool, nil
}

// Store connects to the database and checks its schema.
func (a *App) Store(ctx context.Context) (*store.Store, error) { return a.store(ctx, 0) }

// StoreOneConn is Store on a single connection, for a short command that
// runs one statement at a time (each connection costs a PostgreSQL backend
// and an authentication): `trigger` listens, queries and waits on it.
func (a *App) StoreOneConn(ctx context.Context) (*store.Store, error) { return a.store(ctx, 1) }

func (a *App) store(ctx context.Context, maxConns int32) (*store.Store, error) {
	pool, err := a.pool(ctx, maxConns)
	if err != nil {
		return nil, err
	}
	s := store.New(pool)
	if err := s.CheckSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Parser returns a DAG parser validating against the operators.
func (a *App) Parser() *dag.Parser {
	p := dag.NewParser(a.Registry())
	p.PausedAtCreation = true
	if cfg, err := a.Config(); err == nil {
		p.PausedAtCreation = cfg.DagsArePausedAtCreation
	}
	return p
}

// LoadDAG returns a DAG's current version: from the database when the
// scheduler knows it, else from the DAGs folder — in which case it is
// registered, so triggering a DAG right after writing its file works.
func (a *App) LoadDAG(ctx context.Context, st *store.Store, dagID string) (*dag.DAG, error) {
	d, err := scheduler.CurrentDAG(ctx, st.Q, a.Parser(), dagID)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return d, err
	}
	folder := a.Parser().LoadFolder(a.DagsFolder())
	d = folder.DAG(dagID)
	if d == nil {
		var known []string
		if rows, err := st.Dags(ctx); err == nil {
			for _, r := range rows {
				known = append(known, r.DagID)
			}
		}
		return nil, dagNotFound(dagID, "in the database or in "+a.DagsFolder(), folder, known)
	}
	err = st.InTx(ctx, func(q store.Q) error { return scheduler.RegisterDAG(ctx, q, d) })
	return d, err
}

// RunDAG parses the DAG version a run uses (runs are pinned to the version
// they were created with).
func (a *App) RunDAG(ctx context.Context, st *store.Store, run store.Run) (*dag.DAG, error) {
	src, path, err := st.DagSource(ctx, run.Hash)
	if err != nil {
		return nil, err
	}
	d, errs := a.Parser().ParseBytes(path, src)
	if len(errs) > 0 {
		return nil, fmt.Errorf("DAG %s (version %.12s, used by run %s) does not parse any more:\n%w", run.DagID, run.Hash, run.RunID, errs)
	}
	d.Hash = run.Hash
	return d, nil
}

// FindDAG finds a DAG by file path or by id in the DAGs folder, without a
// database.
func (a *App) FindDAG(fileOrID string) (*dag.DAG, error) {
	if st, err := os.Stat(fileOrID); err == nil && !st.IsDir() {
		d, errs := a.Parser().ParseFile(fileOrID)
		if len(errs) > 0 {
			return nil, errs
		}
		return d, nil
	}
	folder := a.Parser().LoadFolder(a.DagsFolder())
	if d := folder.DAG(fileOrID); d != nil {
		return d, nil
	}
	return nil, dagNotFound(fileOrID, "(not a file, and no DAG with that id in "+a.DagsFolder()+")", folder, nil)
}

// dagNotFound explains a DAG id that matches nothing: the closest known id
// ("did you mean"), and only the broken files that may be the one meant —
// a file named like the id — instead of every broken file's errors.
func dagNotFound(id, where string, folder *dag.Folder, known []string) error {
	for _, d := range folder.DAGs {
		known = append(known, d.ID)
	}
	msg := fmt.Sprintf("DAG %q not found %s", id, where)
	if c := suggest.Closest(id, known); c != "" {
		msg += fmt.Sprintf("; did you mean %q?", c)
	}
	var maybe dag.Errors
	others := 0
	for path, errs := range folder.Errors {
		stem := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		if stem == id || suggest.Closest(id, []string{stem}) != "" {
			maybe = append(maybe, errs...)
		} else {
			others++
		}
	}
	if len(maybe) > 0 {
		msg += fmt.Sprintf("\na file that may define it does not parse:\n%v", maybe)
	}
	if others > 0 {
		msg += fmt.Sprintf("\n(%d other file(s) in the DAGs folder have errors: podflow validate lists them)", others)
	}
	return errors.New(msg)
}

// withStore wraps a command body that needs the database: it connects,
// checks the schema, and closes the connection afterwards.
func (a *App) withStore(run func(cmd *cobra.Command, args []string, st *store.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		st, err := a.Store(cmd.Context())
		if err != nil {
			return err
		}
		defer st.Close()
		return run(cmd, args, st)
	}
}
