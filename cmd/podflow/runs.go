package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		runs := &cobra.Command{Use: "runs", Short: "DAG runs"}
		runs.AddCommand(newRunsListCmd(app))
		root.AddCommand(runs)
	})
}

func newRunsListCmd(app *App) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "list [DAG_ID]",
		Short: "List runs, newest first",
		Args:  cobra.MaximumNArgs(1),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			dagID := ""
			if len(args) == 1 {
				dagID = args[0]
			}
			runs, err := st.Runs(ctx, dagID, limit)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "DAG_ID\tRUN_ID\tSTATE\tTYPE\tSTARTED\tENDED")
			for _, r := range runs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.DagID, r.RunID, r.State, r.RunType, fmtTime(r.StartedAt), fmtTime(r.EndedAt))
			}
			return w.Flush()
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many runs to show")
	return cmd
}
