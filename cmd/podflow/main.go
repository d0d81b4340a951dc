// Command podflow is podflow's CLI: validate DAG files, trigger and inspect
// runs, read logs and XComs, run a task locally, and run everything in one
// process (standalone). It talks to Postgres directly.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "podflow:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "podflow:", err)
		os.Exit(2)
	}
}

// exitError ends the command with a given exit code.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func newRootCmd() *cobra.Command {
	app := &App{}
	root := &cobra.Command{
		Use:           "podflow",
		Short:         "podflow runs DAGs of bash and Kubernetes pod tasks",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get().String(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	app.bindFlags(root)

	dags := &cobra.Command{Use: "dags", Short: "List, show, pause and unpause DAGs"}
	dags.AddCommand(newDagsShowCmd(app))
	root.AddCommand(dags)
	root.AddCommand(newValidateCmd(app))
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print podflow's version and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.Get())
			return err
		},
	})
	for _, add := range extraCommands {
		add(app, root, dags)
	}
	return root
}

// extraCommands lets each command file register itself (see init in each
// file) without one central switch.
var extraCommands []func(app *App, root, dags *cobra.Command)
