package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/localpg"
	"github.com/podflow/podflow/migrations"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		db := &cobra.Command{Use: "db", Short: "Database schema and retention, and the local PostgreSQL of standalone"}
		db.AddCommand(newDBMigrateCmd(app), newDBCheckCmd(app), newDBCleanCmd(app), newDBStatusCmd(app), newDBStopCmd())
		root.AddCommand(db)
	})
}

func newDBMigrateCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending schema migrations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pool, err := app.Pool(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			applied, err := migrations.Apply(ctx, pool)
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "schema is up to date (version %d)\n", migrations.Latest())
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "applied migrations %v; schema at version %d\n", applied, migrations.Latest())
			return nil
		},
	}
}

func newDBCheckCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check that the database is reachable and its schema current",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pool, err := app.Pool(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			v, err := migrations.Check(ctx, pool)
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database ok, schema version %d\n", v)
			return nil
		},
	}
}

func newDBCleanCmd(app *App) *cobra.Command {
	var olderThan string
	cmd := &cobra.Command{
		Use:   "clean --older-than DURATION",
		Short: "Delete finished runs (with their task instances, logs and XComs) older than DURATION",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := parseAge(olderThan)
			if err != nil {
				return fmt.Errorf("--older-than %q: %w", olderThan, err)
			}
			ctx := cmd.Context()
			st, err := app.Store(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.DeleteFinishedRunsBefore(ctx, time.Now().Add(-d))
			if err != nil {
				return err
			}
			versions, err := st.DeleteUnusedDagVersions(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d finished runs that ended more than %s ago and %d DAG versions no run or DAG uses\n", n, olderThan, versions)
			return nil
		},
	}
	cmd.Flags().StringVar(&olderThan, "older-than", "", "age of finished runs to delete (e.g. 30d, 720h)")
	_ = cmd.MarkFlagRequired("older-than")
	return cmd
}

// maxAge bounds --older-than: a larger age would wrap time.Now().Add(-d)
// into the future and delete every finished run.
const maxAge = 100 * 365 * 24 * time.Hour

// parseAge accepts Go durations, plain seconds and a day suffix (30d), all
// positive and at most 100 years.
func parseAge(s string) (time.Duration, error) {
	const want = "want a positive duration such as 720h, 30d or 90m"
	var d time.Duration
	var days int64
	if _, err := fmt.Sscanf(s, "%dd", &days); err == nil && fmt.Sprintf("%dd", days) == s {
		if days > int64(maxAge/(24*time.Hour)) {
			return 0, fmt.Errorf("%s, at most %dd", want, int64(maxAge/(24*time.Hour)))
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var ok bool
		if d, ok = dag.ParseDuration(s); !ok {
			return 0, errors.New(want)
		}
	}
	switch {
	case d <= 0:
		return 0, errors.New(want)
	case d > maxAge:
		return 0, fmt.Errorf("%s, at most %dd", want, int64(maxAge/(24*time.Hour)))
	}
	return d, nil
}

// Exit codes of `db status`, as pg_ctl status has them.
const (
	exitLocalDBNotRunning = 3
	exitLocalDBMissing    = 4
)

func newDBStatusCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the local PostgreSQL that standalone keeps under PODFLOW_HOME: running or not, data directory, port, URL (password masked)",
		Long: "Show the persistent local PostgreSQL that `podflow standalone` starts under PODFLOW_HOME when DATABASE_URL is not set. " +
			"Exit status 0 when it is running, 3 when it is not, 4 when there is none.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := localpg.PersistentPostgresStatus(localpg.Home())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			printLocalDBStatus(out, st)
			if cfg, err := app.Config(); err == nil && cfg.DatabaseURL != "" {
				fmt.Fprintln(out, "note: DATABASE_URL (or --database-url, or database_url in podflow.yaml) is set: podflow commands use that database, not this one")
			}
			switch {
			case st.DataDir == "":
				return &exitError{code: exitLocalDBMissing}
			case !st.Running():
				return &exitError{code: exitLocalDBNotRunning}
			}
			return nil
		},
	}
}

func printLocalDBStatus(out io.Writer, st localpg.PersistentStatus) {
	switch {
	case st.DataDir == "":
		fmt.Fprintf(out, "no local PostgreSQL under %s: `podflow standalone` makes one when DATABASE_URL is not set\n", st.Home)
		return
	case st.Running():
		fmt.Fprintf(out, "local PostgreSQL under %s: running (pid %d)\n", st.Home, st.PID)
	default:
		fmt.Fprintf(out, "local PostgreSQL under %s: not running (`podflow standalone` starts it)\n", st.Home)
	}
	fmt.Fprintf(out, "  data directory: %s\n", st.DataDir)
	if st.Port != 0 {
		fmt.Fprintf(out, "  port:           %d\n", st.Port)
	}
	if st.URL != "" {
		fmt.Fprintf(out, "  url:            %s\n", localpg.RedactURL(st.URL))
	}
}

func newDBStopCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the local PostgreSQL that standalone keeps under PODFLOW_HOME (its data stays; standalone starts it again)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home := localpg.Home()
			stopped, err := localpg.StopPersistentPostgres(cmd.Context(), home)
			if err != nil {
				return err
			}
			if !stopped {
				fmt.Fprintf(cmd.OutOrStdout(), "the local PostgreSQL under %s is not running: nothing to stop\n", home)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stopped the local PostgreSQL under %s (its data stays; `podflow standalone` starts it again)\n", home)
			return nil
		},
	}
}
