package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newTasksCmd(app))
	})
}

// taskRecord is a task instance as -o json|yaml prints it (Airflow's field
// names).
type taskRecord struct {
	DagID     string     `json:"dag_id"`
	DagRunID  string     `json:"dag_run_id"`
	TaskID    string     `json:"task_id"`
	MapIndex  int        `json:"map_index"`
	State     string     `json:"state"`
	TryNumber int        `json:"try_number"`
	MaxTries  int        `json:"max_tries"`
	Pool      string     `json:"pool"`
	StartDate *time.Time `json:"start_date"`
	EndDate   *time.Time `json:"end_date"`
	Duration  *float64   `json:"duration"` // seconds
	Error     string     `json:"error,omitempty"`
}

func newTasksCmd(app *App) *cobra.Command {
	var output string
	var wide bool
	cmd := &cobra.Command{
		Use:     "tasks DAG_ID RUN_ID",
		Short:   "Show a run's task instances: state, try, start, duration",
		Args:    cobra.ExactArgs(2),
		PreRunE: func(*cobra.Command, []string) error { return checkOutput(output) },
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			ctx := cmd.Context()
			run, err := findRun(ctx, st, args[0], args[1])
			if err != nil {
				return err
			}
			tis, err := st.TaskInstances(ctx, run.PK)
			if err != nil {
				return err
			}
			if output == outputTable {
				fmt.Fprintf(cmd.OutOrStdout(), "run %s of %s: %s\n", run.RunID, run.DagID, run.State)
			}
			l := listing{header: []string{"TASK_ID", "MAP_INDEX", "STATE", "TRY", "STARTED", "DURATION", "ERROR"}}
			records := []taskRecord{}
			for _, ti := range tis {
				dur := "-"
				var secs *float64
				if ti.StartedAt != nil {
					end := time.Now()
					if ti.EndedAt != nil {
						end = *ti.EndedAt
					}
					d := end.Sub(*ti.StartedAt)
					dur = d.Round(time.Millisecond).String()
					s := d.Seconds()
					secs = &s
				}
				errText := firstLine(ti.Error)
				if wide {
					errText = strings.ReplaceAll(ti.Error, "\n", " ⏎ ")
				}
				l.add(ti.TaskID, mapIndexText(ti), ti.State, fmt.Sprint(ti.TryNumber), fmtTime(ti.StartedAt), dur, errText)
				records = append(records, taskRecord{DagID: ti.DagID, DagRunID: ti.RunID, TaskID: ti.TaskID,
					MapIndex: ti.MapIndex, State: ti.State, TryNumber: ti.TryNumber, MaxTries: ti.MaxTries,
					Pool: ti.Pool, StartDate: ti.StartedAt, EndDate: ti.EndedAt, Duration: secs, Error: ti.Error})
			}
			l.records = records
			return l.print(cmd.OutOrStdout(), output)
		}),
	}
	cmd.AddCommand(newTasksRenderCmd(app))
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVar(&wide, "wide", false, "show each error in full (one line), not only its first line")
	return cmd
}

// mapIndexText is an instance's map index with its map_index_template
// name, "-" for a task that is not mapped.
func mapIndexText(ti store.TaskInstance) string {
	switch {
	case ti.MapIndex < 0:
		return "-"
	case ti.RenderedMapIndex != "":
		return fmt.Sprintf("%d (%s)", ti.MapIndex, ti.RenderedMapIndex)
	}
	return fmt.Sprint(ti.MapIndex)
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i] + " …"
		}
	}
	return s
}
