package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/auth"
	"github.com/podflow/podflow/internal/daemon"
	"github.com/podflow/podflow/internal/localkube"
	"github.com/podflow/podflow/internal/localpg"
	"github.com/podflow/podflow/internal/webserver"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newStandaloneCmd(app))
	})
}

func newStandaloneCmd(app *App) *cobra.Command {
	var localCluster bool
	webAddr := "127.0.0.1:8080"
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run everything in one process: migrations, scheduler, workers and triggerer (and the local Postgres when no DATABASE_URL)",
		Long: "Run everything in one process: migrations, the scheduler and its workers, and a triggerer. Without DATABASE_URL it " +
			"starts (or reuses) a persistent local PostgreSQL under PODFLOW_HOME (default ~/.podflow) and records its " +
			"URL (with its password; the file is readable by you only) there, so every other podflow command in another " +
			"shell finds the same database. `podflow db status` shows it, `podflow db stop` stops it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			logger := daemon.Logger("standalone")
			if cfg.DatabaseURL == "" {
				home := localpg.Home()
				url, err := localpg.EnsurePersistentPostgres(ctx, home, cmd.ErrOrStderr())
				if err != nil && ctx.Err() != nil {
					return nil // stopped (Ctrl-C) while starting
				}
				if err != nil {
					return fmt.Errorf("start the local PostgreSQL under %s: %w (or set DATABASE_URL)", home, err)
				}
				cfg.DatabaseURL = url
				logger.Info("using the local PostgreSQL", "home", home, "url", localpg.RedactURL(url))
			}
			if localCluster {
				stop, err := startLocalCluster(ctx, logger)
				if err != nil {
					return err
				}
				defer stop()
			}
			st, err := daemon.OpenStore(ctx, cfg.DatabaseURL)
			if err != nil && ctx.Err() != nil {
				return nil // stopped while starting
			}
			if err != nil {
				return err
			}
			defer st.Close()
			fmt.Fprintf(os.Stderr, "podflow standalone: DAGs from %s, %d workers; Ctrl-C to stop\n", cfg.DagsFolder, cfg.Workers)
			parts := daemon.Parts{Scheduler: true, Triggerer: true}
			if webAddr != "" {
				ready := func(a net.Addr) {
					hint := ""
					if cfg.Auth == auth.ModeBuiltin {
						hint = " (logins on: podflow users create NAME --role admin, or PODFLOW_AUTH=none on a machine of your own)"
					}
					fmt.Fprintf(os.Stderr, "podflow standalone: REST API at http://%s/api/v1%s\n", a, hint)
				}
				parts.Webserver = func(reg *prometheus.Registry, logger hclog.Logger) (func(context.Context) error, error) {
					return webserver.New(ctx, st, cfg, webAddr, reg, logger, ready)
				}
			}
			return daemon.RunParts(ctx, st, cfg, logger, parts)
		},
	}
	cmd.Flags().StringVar(&webAddr, "webserver-addr", webAddr, `serve the REST API here too ("" turns it off)`)
	cmd.Flags().BoolVar(&localCluster, "local-cluster", false,
		"also start the local Kubernetes cluster (bin/localcluster: it runs pod commands as processes on this machine, as root) and use it for pod tasks")
	daemon.BindSchedulerFlags(cmd.Flags(), &app.flags)
	daemon.BindTriggererFlags(cmd.Flags(), &app.flags)
	return cmd
}

// startLocalCluster starts bin/localcluster under PODFLOW_HOME/cluster and
// points this process's pod tasks at it (KUBECONFIG).
func startLocalCluster(ctx context.Context, logger hclog.Logger) (stop func(), err error) {
	bin, err := localkube.FindClusterBinary()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(localpg.Home(), "cluster")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("local cluster dir: %w", err)
	}
	logFile, err := os.Create(filepath.Join(localpg.Home(), "localcluster.log"))
	if err != nil {
		return nil, fmt.Errorf("local cluster log: %w", err)
	}
	logger.Info("starting the local Kubernetes cluster: pod commands run as processes on this machine", "binary", bin, "dir", dir)
	c, err := localkube.StartCluster(ctx, bin, dir, logFile)
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := os.Setenv("KUBECONFIG", c.Kubeconfig); err != nil {
		c.Stop()
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "podflow standalone: local cluster ready; use it with: export KUBECONFIG=%s\n", c.Kubeconfig)
	return func() { c.Stop(); logFile.Close() }, nil
}
