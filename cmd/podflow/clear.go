package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/runstate"
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
			run, err := st.Run(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			src, path, err := st.DagSource(ctx, run.Hash)
			if err != nil {
				return err
			}
			d, errs := app.Parser().ParseBytes(path, src)
			if len(errs) > 0 {
				return errs
			}
			var ids []string
			switch {
			case task == "":
				for _, t := range d.Tasks {
					ids = append(ids, t.ID)
				}
			case d.Task(task) == nil:
				return fmt.Errorf("DAG %s has no task %q", d.ID, task)
			default:
				ids = []string{task}
				if downstream {
					ids = append(ids, d.DownstreamAll(task)...)
				}
			}
			var n int
			err = st.InTx(ctx, func(q store.Q) error {
				locked, ok, err := q.LockRun(ctx, run.PK, false)
				if err != nil || !ok {
					return err
				}
				if n, err = q.ClearTasks(ctx, locked, ids); err != nil {
					return err
				}
				e := cliEvent("clear", map[string]any{"task_ids": ids, "cleared": n, "downstream": downstream})
				e.DagID, e.RunID, e.TaskID = run.DagID, run.RunID, task
				if err := q.RecordEvent(ctx, e); err != nil {
					return err
				}
				if locked.State != runstate.RunRunning && locked.State != runstate.RunQueued {
					if _, err := q.ReopenRun(ctx, run.PK); err != nil {
						return err
					}
				}
				return q.Notify(ctx, store.ChannelSchedulerWake, "")
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cleared %d task instances of %s %s: %v\n", n, run.DagID, run.RunID, ids)
			return nil
		}),
	}
	cmd.Flags().StringVar(&task, "task", "", "clear only this task")
	cmd.Flags().BoolVar(&downstream, "downstream", false, "with --task: clear its downstream tasks too")
	return cmd
}
