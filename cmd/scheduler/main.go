// Command scheduler is podflow's scheduler daemon: it syncs the DAGs folder,
// creates DAG runs, and runs task instances on its workers. Run as many as
// you like against one database.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/config"
	"github.com/podflow/podflow/internal/daemon"
)

func main() {
	var flags config.Flags
	cmd := &cobra.Command{
		Use:           "scheduler",
		Short:         "podflow scheduler: DAG runs and workers",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(flags, os.Getenv)
			if err != nil {
				return err
			}
			logger := daemon.Logger("scheduler")
			st, err := daemon.OpenStore(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			return daemon.Run(cmd.Context(), st, cfg, logger, true, false)
		},
	}
	daemon.BindCommonFlags(cmd.Flags(), &flags)
	daemon.BindSchedulerFlags(cmd.Flags(), &flags)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}
