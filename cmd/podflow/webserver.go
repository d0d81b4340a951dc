package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/daemon"
	"github.com/podflow/podflow/internal/metrics"
	"github.com/podflow/podflow/internal/webserver"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newWebserverCmd(app))
	})
}

func newWebserverCmd(app *App) *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "webserver",
		Short: "Serve the web UI (/), the REST API (/api/v1, spec at /api/v1/openapi.yaml), /healthz and /metrics",
		Long: "Serve the web UI at /, the REST API under /api/v1 (its OpenAPI spec at /api/v1/openapi.yaml), /healthz and /metrics. " +
			"Stateless: run as many as you like against one database. Logins are on (auth: builtin): create a user " +
			"with `podflow users create NAME --role admin`; auth: none is refused unless --addr is a loopback address.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			st, err := daemon.OpenStore(ctx, cfg.DatabaseURL)
			if err != nil {
				return err
			}
			defer st.Close()
			m := metrics.New()
			m.RegisterDatabase(st)
			serve, err := webserver.New(ctx, st, cfg, addr, m.Registry, daemon.Logger("webserver"), nil)
			if err != nil {
				return err
			}
			return serve(ctx)
		},
	}
	def := ":8080"
	if env := os.Getenv("PODFLOW_WEBSERVER_ADDR"); env != "" {
		def = env
	}
	cmd.Flags().StringVar(&addr, "addr", def, "address to listen on (env PODFLOW_WEBSERVER_ADDR); :8080 is every interface")
	return cmd
}
