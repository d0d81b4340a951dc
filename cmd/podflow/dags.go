package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, _, dags *cobra.Command) {
		dags.AddCommand(newDagsListCmd(app), newPauseCmd(app, true), newPauseCmd(app, false))
	})
}

// dagRecord is a DAG as -o json|yaml prints it (Airflow's field names).
type dagRecord struct {
	DagID           string `json:"dag_id"`
	Schedule        string `json:"schedule"`
	IsPaused        bool   `json:"is_paused"`
	IsActive        bool   `json:"is_active"`
	HasImportErrors bool   `json:"has_import_errors"`
	ImportErrors    string `json:"import_errors,omitempty"`
	Fileloc         string `json:"fileloc"`
}

func newDagsListCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the DAGs the scheduler knows, with their state and next run",
		Args:    cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error { return checkOutput(output) },
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			ctx := cmd.Context()
			rows, err := st.Dags(ctx)
			if err != nil {
				return err
			}
			broken, err := st.BrokenFiles(ctx)
			if err != nil {
				return err
			}
			l := listing{header: []string{"DAG_ID", "SCHEDULE", "PAUSED", "STATUS", "PATH"}}
			records := []dagRecord{}
			for _, r := range rows {
				status := "ok"
				switch {
				case !r.Active:
					status = "file removed (inactive)"
				case r.Errors != "":
					status = "broken (last good version runs)"
				}
				sched := r.Schedule
				if sched == "" {
					sched = "manual"
				}
				l.add(r.DagID, sched, fmt.Sprint(r.Paused), status, r.Path)
				records = append(records, dagRecord{DagID: r.DagID, Schedule: sched, IsPaused: r.Paused, IsActive: r.Active,
					HasImportErrors: r.Errors != "", ImportErrors: r.Errors, Fileloc: r.Path})
			}
			for _, b := range broken {
				l.add("-", "-", "-", "broken (never parsed)", b.Path)
				records = append(records, dagRecord{HasImportErrors: true, ImportErrors: b.Errors, Fileloc: b.Path})
			}
			l.records = records
			return l.print(cmd.OutOrStdout(), output)
		}),
	}
	addOutputFlag(cmd, &output)
	return cmd
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
			event, word := "unpause", "unpaused"
			if pause {
				event, word = "pause", "paused"
			}
			err := st.InTx(ctx, func(q store.Q) error {
				if err := q.SetPaused(ctx, args[0], pause); err != nil {
					return err
				}
				e := cliEvent(event, nil)
				e.DagID = args[0]
				return q.RecordEvent(ctx, e)
			})
			if err != nil {
				return err
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
