package main

import (
	"encoding/json"
	"time"

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

// runRecord is a run as -o json|yaml prints it (Airflow's field names).
type runRecord struct {
	DagID             string          `json:"dag_id"`
	DagRunID          string          `json:"dag_run_id"`
	State             string          `json:"state"`
	RunType           string          `json:"run_type"`
	LogicalDate       time.Time       `json:"logical_date"`
	DataIntervalStart time.Time       `json:"data_interval_start"`
	DataIntervalEnd   time.Time       `json:"data_interval_end"`
	StartDate         *time.Time      `json:"start_date"`
	EndDate           *time.Time      `json:"end_date"`
	Conf              json.RawMessage `json:"conf"`
}

func newRunsListCmd(app *App) *cobra.Command {
	var limit int
	var output string
	cmd := &cobra.Command{
		Use:     "list [DAG_ID]",
		Short:   "List runs, newest first",
		Args:    cobra.MaximumNArgs(1),
		PreRunE: func(*cobra.Command, []string) error { return checkOutput(output) },
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
			l := listing{header: []string{"DAG_ID", "RUN_ID", "STATE", "TYPE", "STARTED", "ENDED"}}
			records := []runRecord{}
			for _, r := range runs {
				l.add(r.DagID, r.RunID, r.State, r.RunType, fmtTime(r.StartedAt), fmtTime(r.EndedAt))
				conf := json.RawMessage(r.Conf)
				if len(conf) == 0 {
					conf = json.RawMessage("{}")
				}
				records = append(records, runRecord{DagID: r.DagID, DagRunID: r.RunID, State: r.State, RunType: r.RunType,
					LogicalDate: r.LogicalDate, DataIntervalStart: r.DataIntervalStart, DataIntervalEnd: r.DataIntervalEnd,
					StartDate: r.StartedAt, EndDate: r.EndedAt, Conf: conf})
			}
			l.records = records
			return l.print(cmd.OutOrStdout(), output)
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many runs to show")
	addOutputFlag(cmd, &output)
	return cmd
}
