package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newTasksCmd(app))
	})
}

func newTasksCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "tasks DAG_ID RUN_ID",
		Short: "Show a run's task instances: state, try, start, duration",
		Args:  cobra.ExactArgs(2),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			run, err := st.Run(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			tis, err := st.TaskInstances(ctx, run.PK)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s of %s: %s\n", run.RunID, run.DagID, run.State)
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "TASK_ID\tSTATE\tTRY\tSTARTED\tDURATION\tERROR")
			for _, ti := range tis {
				dur := "-"
				if ti.StartedAt != nil {
					end := time.Now()
					if ti.EndedAt != nil {
						end = *ti.EndedAt
					}
					dur = end.Sub(*ti.StartedAt).Round(time.Millisecond).String()
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", ti.TaskID, ti.State, ti.TryNumber, fmtTime(ti.StartedAt), dur, firstLine(ti.Error))
			}
			return w.Flush()
		}),
	}
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
