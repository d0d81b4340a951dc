package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/daemon"
	"github.com/podflow/podflow/internal/localenv"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newStandaloneCmd(app))
	})
}

func newStandaloneCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run everything in one process: migrations, scheduler, workers and triggerer (and the local Postgres when no DATABASE_URL)",
		Long: "Run everything in one process: migrations, the scheduler and its workers, and a triggerer. Without DATABASE_URL it " +
			"starts (or reuses) a persistent local PostgreSQL under PODFLOW_HOME (default ~/.podflow) and records its " +
			"URL there, so every other podflow command in another shell finds the same database.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			logger := daemon.Logger("standalone")
			if cfg.DatabaseURL == "" {
				home := localenv.Home()
				url, err := localenv.EnsurePersistentPostgres(ctx, home)
				if err != nil {
					return fmt.Errorf("start the local PostgreSQL under %s: %w (or set DATABASE_URL)", home, err)
				}
				cfg.DatabaseURL = url
				logger.Info("using the local PostgreSQL", "home", home, "url", url)
			}
			st, err := daemon.OpenStore(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintf(os.Stderr, "podflow standalone: DAGs from %s, %d workers; Ctrl-C to stop\n", cfg.DagsFolder, cfg.Workers)
			return daemon.Run(ctx, st, cfg, logger, true, true)
		},
	}
	daemon.BindSchedulerFlags(cmd.Flags(), &app.flags)
	daemon.BindTriggererFlags(cmd.Flags(), &app.flags)
	return cmd
}
