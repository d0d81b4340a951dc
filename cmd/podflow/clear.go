package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newClearCmd(app))
	})
}

func newClearCmd(app *App) *cobra.Command {
	var task string
	var downstream bool
	cmd := &cobra.Command{
		Use:   "clear DAG_ID RUN_ID [--task T [--downstream]]",
		Short: "Clear task instances so they run again (all of the run, or one task and optionally its downstreams)",
		Args:  cobra.ExactArgs(2),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			run, err := findRun(ctx, st, args[0], args[1])
			if err != nil {
				return err
			}
			audit := cliEvent("clear", map[string]any{"task": task, "downstream": downstream})
			audit.DagID, audit.RunID, audit.TaskID = run.DagID, run.RunID, task
			req := scheduler.ClearRequest{IncludeDownstream: downstream, Audit: &audit}
			if task != "" {
				req.TaskIDs = []string{task}
			}
			ids, err := scheduler.ClearRun(ctx, st, app.Parser(), run, req)
			if err != nil {
				return err
			}
			n := len(ids)
			fmt.Fprintf(cmd.OutOrStdout(), "cleared %d task instances of %s %s: %v\n", n, run.DagID, run.RunID, ids)
			return nil
		}),
	}
	cmd.Flags().StringVar(&task, "task", "", "clear only this task")
	cmd.Flags().BoolVar(&downstream, "downstream", false, "with --task: clear its downstream tasks too")
	return cmd
}
