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
	var mapIndex int
	var downstream, latest bool
	cmd := &cobra.Command{
		Use:   "clear DAG_ID RUN_ID [--task T [--map-index N] [--downstream]]",
		Short: "Clear task instances so they run again (all of the run, or one task and optionally its downstreams)",
		Long: "Clear task instances so they run again (all of the run, or one task and optionally its downstreams). " +
			"A run is pinned to the DAG version it was created with, so a cleared task reruns that version's code; " +
			"--use-latest-version moves the run to the DAG file's current good version first (after you fixed it).",
		Args: cobra.ExactArgs(2),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			run, err := findRun(ctx, st, args[0], args[1])
			if err != nil {
				return err
			}
			audit := cliEvent("clear", map[string]any{"task": task, "downstream": downstream, "use_latest_version": latest})
			audit.DagID, audit.RunID, audit.TaskID = run.DagID, run.RunID, task
			req := scheduler.ClearRequest{IncludeDownstream: downstream, UseLatestVersion: latest, Audit: &audit}
			if task != "" {
				req.TaskIDs = []string{task}
			}
			if cmd.Flags().Changed("map-index") {
				if task == "" {
					return &exitError{code: 2, msg: "--map-index needs --task: the mapped task whose instance to clear"}
				}
				req.MapIndex = &mapIndex
			}
			res, err := scheduler.ClearRunVersion(ctx, st, app.Parser(), run, req)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "cleared %d task instances of %s %s: %v\n", len(res.TaskIDs), run.DagID, run.RunID, res.TaskIDs)
			switch {
			case res.Moved:
				fmt.Fprintf(out, "they run with the DAG's current version %.12s (the run was on %.12s)\n", res.Version, run.Hash)
			case res.Latest != "" && res.Latest != res.Version:
				fmt.Fprintf(out, "they run with version %.12s, the one the run was created with; the DAG file is now at %.12s "+
					"(clear again with --use-latest-version to run that)\n", res.Version, res.Latest)
			default:
				fmt.Fprintf(out, "they run with version %.12s (the DAG's current one)\n", res.Version)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&task, "task", "", "clear only this task")
	cmd.Flags().IntVar(&mapIndex, "map-index", -1, "with --task: clear only this instance of a mapped task")
	cmd.Flags().BoolVar(&downstream, "downstream", false, "with --task: clear its downstream tasks too")
	cmd.Flags().BoolVar(&latest, "use-latest-version", false, "rerun with the DAG file's current good version, not the one the run was created with")
	return cmd
}
