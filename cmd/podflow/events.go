package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		events := &cobra.Command{Use: "events", Short: "Read the audit log of changes made through the API and the CLI"}
		events.AddCommand(newEventsListCmd(app))
		root.AddCommand(events)
	})
}

func newEventsListCmd(app *App) *cobra.Command {
	var output string
	var f store.EventFilter
	cmd := &cobra.Command{
		Use:   "list [--dag-id D] [--event E] [--limit N]",
		Short: "List audit-log entries, newest first",
		Args:  cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if f.Limit < 1 || f.Limit > 10000 {
				return &exitError{code: 2, msg: fmt.Sprintf("--limit %d: want 1 to 10000", f.Limit)}
			}
			return checkOutput(output)
		},
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			events, total, err := st.ListEvents(cmd.Context(), f)
			if err != nil {
				return err
			}
			l := listing{header: []string{"ID", "WHEN", "OWNER", "SOURCE", "EVENT", "DAG_ID", "RUN_ID", "TASK_ID", "EXTRA"}, records: events}
			for _, e := range events {
				extra := string(e.Extra)
				if extra == "{}" {
					extra = ""
				}
				l.add(fmt.Sprint(e.ID), fmtTime(&e.At), e.Actor, e.Source, e.Event, dash(e.DagID), dash(e.RunID), dash(e.TaskID), extra)
			}
			if err := l.print(cmd.OutOrStdout(), output); err != nil {
				return err
			}
			if output == outputTable && total > len(events) {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d entries shown; raise --limit for more\n", len(events), total)
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&f.DagID, "dag-id", "", "only entries about this DAG")
	cmd.Flags().StringVar(&f.Event, "event", "", "only this event (trigger, clear, pause, user_create, …)")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many entries")
	addOutputFlag(cmd, &output)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
