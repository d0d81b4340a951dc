package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newBackfillCmd(app))
	})
}

func newBackfillCmd(app *App) *cobra.Command {
	var start, end string
	cmd := &cobra.Command{
		Use:   "backfill DAG_ID --start DATE --end DATE",
		Short: "Create runs for every schedule interval between two dates; the scheduler runs them oldest first within max_active_runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := app.Store(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			d, err := app.LoadDAG(ctx, st, args[0])
			if err != nil {
				return err
			}
			from, err := parseDate(start, d.Timezone)
			if err != nil {
				return fmt.Errorf("--start: %w", err)
			}
			to, err := parseDate(end, d.Timezone)
			if err != nil {
				return fmt.Errorf("--end: %w", err)
			}
			if d.Schedule == "" || d.Schedule == "@once" {
				return fmt.Errorf("DAG %s has no recurring schedule to backfill", d.ID)
			}
			// One transaction: the runs and their audit entry appear together.
			var queued []string
			err = st.InTx(ctx, func(q store.Q) error {
				for at := from.Add(-time.Nanosecond); ; {
					next, ok := d.NextRun(at)
					if !ok || next.After(to) {
						break
					}
					runID, created, err := scheduler.CreateRun(ctx, q, d, "backfill", next, nil)
					if err != nil {
						return err
					}
					if created {
						queued = append(queued, runID)
					}
					at = next
				}
				if len(queued) == 0 {
					return nil
				}
				e := cliEvent("backfill", map[string]any{"start": start, "end": end, "runs": len(queued)})
				e.DagID = d.ID
				return q.RecordEvent(ctx, e)
			})
			if err != nil {
				return err
			}
			for _, runID := range queued {
				fmt.Fprintf(cmd.OutOrStdout(), "queued %s\n", runID)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d backfill runs queued for %s\n", len(queued), d.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&start, "start", "", "first logical date (YYYY-MM-DD or RFC3339)")
	cmd.Flags().StringVar(&end, "end", "", "last logical date (YYYY-MM-DD or RFC3339)")
	_ = cmd.MarkFlagRequired("start")
	_ = cmd.MarkFlagRequired("end")
	return cmd
}

func parseDate(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want YYYY-MM-DD or RFC3339", s)
	}
	return t, nil
}
