package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		assets := &cobra.Command{Use: "assets", Short: "Assets: which DAGs produce and consume them, and their events"}
		assets.AddCommand(newAssetsListCmd(app), newAssetsEventsCmd(app))
		root.AddCommand(assets)
	})
}

func newAssetsListCmd(app *App) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List assets with their producing tasks, consuming DAGs and last event",
		Args:    cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error { return checkOutput(output) },
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			assets, err := st.Assets(cmd.Context())
			if err != nil {
				return err
			}
			l := listing{header: []string{"URI", "PRODUCERS", "CONSUMERS", "EVENTS", "LAST_EVENT"}, records: assets}
			for _, a := range assets {
				producers := make([]string, len(a.Producers))
				for i, p := range a.Producers {
					producers[i] = p.DagID + "." + p.TaskID
				}
				l.add(a.URI, dash(strings.Join(producers, ",")), dash(strings.Join(a.Consumers, ",")), fmt.Sprint(a.Events), fmtTime(a.LastEvent))
			}
			return l.print(cmd.OutOrStdout(), output)
		}),
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func newAssetsEventsCmd(app *App) *cobra.Command {
	var output string
	var limit int
	cmd := &cobra.Command{
		Use:   "events URI [--limit N]",
		Short: "List an asset's events, newest first",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(*cobra.Command, []string) error {
			if limit < 1 || limit > 10000 {
				return &exitError{code: 2, msg: fmt.Sprintf("--limit %d: want 1 to 10000", limit)}
			}
			return checkOutput(output)
		},
		RunE: app.withStore(func(cmd *cobra.Command, args []string, st *store.Store) error {
			evs, err := st.AssetEvents(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			l := listing{header: []string{"ID", "WHEN", "DAG_ID", "RUN_ID", "TASK_ID", "EXTRA"}, records: evs}
			for _, e := range evs {
				extra := string(e.Extra)
				if extra == "{}" {
					extra = ""
				}
				l.add(fmt.Sprint(e.ID), fmtTime(&e.Timestamp), e.SourceDagID, e.SourceRunID, e.SourceTaskID, extra)
			}
			return l.print(cmd.OutOrStdout(), output)
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many events")
	addOutputFlag(cmd, &output)
	return cmd
}
