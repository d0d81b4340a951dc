package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, _, dags *cobra.Command) {
		dags.AddCommand(newDagsListCmd(app), newPauseCmd(app, true), newPauseCmd(app, false))
	})
}

func newDagsListCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the DAGs the scheduler knows, with their state and next run",
		Args:  cobra.NoArgs,
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			ctx := cmd.Context()
			rows, err := st.Dags(ctx)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DAG_ID\tSCHEDULE\tPAUSED\tSTATUS\tPATH")
			for _, r := range rows {
				status := "ok"
				if r.Errors != "" {
					status = "broken (last good version runs)"
				}
				sched := r.Schedule
				if sched == "" {
					sched = "manual"
				}
				fmt.Fprintf(w, "%s\t%s\t%v\t%s\t%s\n", r.DagID, sched, r.Paused, status, r.Path)
			}
			broken, err := st.BrokenFiles(ctx)
			if err != nil {
				return err
			}
			for _, b := range broken {
				fmt.Fprintf(w, "-\t-\t-\tbroken (never parsed)\t%s\n", b.Path)
			}
			return w.Flush()
		}),
	}
}

func newPauseCmd(app *App, pause bool) *cobra.Command {
	use, short := "unpause DAG_ID", "Unpause a DAG: its schedule creates runs again"
	if pause {
		use, short = "pause DAG_ID", "Pause a DAG: its schedule creates no runs (triggering still works)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			if _, err := app.LoadDAG(ctx, st, args[0]); err != nil {
				return err
			}
			if err := st.SetPaused(ctx, args[0], pause); err != nil {
				return err
			}
			word := "unpaused"
			if pause {
				word = "paused"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", args[0], word)
			return nil
		}),
	}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
