package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/store"

	"github.com/podflow/podflow/internal/runstate"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newLogsCmd(app))
	})
}

func newLogsCmd(app *App) *cobra.Command {
	var try, mapIndex int
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs DAG_ID RUN_ID TASK_ID",
		Short: "Print a task instance's log (latest try unless --try)",
		Args:  cobra.ExactArgs(3),
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			run, err := findRun(ctx, st, args[0], args[1])
			if err != nil {
				return err
			}
			ti, err := findTaskInstanceAt(ctx, st, run, args[2], mapIndex)
			if err != nil {
				return err
			}
			n := try
			if n == 0 {
				n = ti.TryNumber
			}
			switch {
			case ti.TryNumber == 0 && !follow:
				reason := ""
				if ti.Error != "" {
					reason = ": " + ti.Error
				}
				return &exitError{code: 1, msg: fmt.Sprintf("task %s of run %s has no log: it never ran (state %s)%s",
					ti.TaskID, run.RunID, ti.State, reason)}
			case n < 0 || n > max(ti.TryNumber, 1):
				return &exitError{code: 1, msg: fmt.Sprintf("task %s of run %s has no try %d (tries: 1 to %d)",
					ti.TaskID, run.RunID, n, ti.TryNumber)}
			}
			// Lines were masked when stored; masking again hides secrets
			// added since.
			mask := app.Masker(ctx, st).Mask
			var after int64
			for {
				lines, err := st.Logs(ctx, ti.ID, n, after)
				if err != nil {
					return err
				}
				for _, l := range lines {
					fmt.Fprintf(cmd.OutOrStdout(), "%s [%s] %s\n", l.At.Local().Format("15:04:05.000"), l.Source, mask(l.Line))
					after = l.ID
				}
				if !follow {
					return nil
				}
				cur, err := st.TaskInstanceByID(ctx, ti.ID)
				if err != nil {
					return err
				}
				if len(lines) == 0 && (cur.TryNumber != n || runstate.Done(cur.State) || cur.State == runstate.UpForRetry) {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(300 * time.Millisecond):
				}
			}
		}),
	}
	cmd.Flags().IntVar(&try, "try", 0, "which try's log (default the latest)")
	cmd.Flags().IntVar(&mapIndex, "map-index", -1, "which instance of a mapped task")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until the try ends")
	return cmd
}
