// Command triggerer is podflow's triggerer daemon: it watches deferred
// tasks' triggers (pods, times) and resumes the tasks when they fire. Run as
// many as you like against one database.
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
		Use:           "triggerer",
		Short:         "podflow triggerer: runs deferred tasks' triggers",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(flags, os.Getenv)
			if err != nil {
				return err
			}
			logger := daemon.Logger("triggerer")
			st, err := daemon.OpenStore(cmd.Context(), cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			return daemon.Run(cmd.Context(), st, cfg, logger, false, true)
		},
	}
	daemon.BindCommonFlags(cmd.Flags(), &flags)
	daemon.BindTriggererFlags(cmd.Flags(), &flags)
	cmd.Flags().DurationVar(&flags.ZombieThreshold, "heartbeat-threshold", 0, "a triggerer silent this long loses its triggers to the others (default 30s)")
	cmd.Flags().StringVar(&flags.HealthAddr, "health-addr", "", "address for /healthz and /metrics, e.g. :8080 (env PODFLOW_HEALTH_ADDR; off when empty)")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "triggerer:", err)
		os.Exit(1)
	}
}
