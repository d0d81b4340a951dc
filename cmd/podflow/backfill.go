package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newBackfillCmd(app))
	})
}

func newBackfillCmd(app *App) *cobra.Command {
	var start, end, reprocess string
	var wait bool
	var conf confFlags
	cmd := &cobra.Command{
		Use:   "backfill DAG_ID --start DATE --end DATE",
		Short: "Create runs for every schedule interval between two dates; the scheduler runs them oldest first within max_active_runs",
		Long: "Create runs for every schedule interval between two dates (inclusive); the scheduler runs them oldest first " +
			"within max_active_runs. A date that already has a run gets no second one: --reprocess-behavior failed reruns " +
			"it (clears it) if it failed, completed if it finished at all, none (the default) leaves it. With --wait, follow " +
			"the runs and exit 1 if one fails.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			confJSON, _, err := conf.load(cmd.InOrStdin())
			if err != nil {
				return err
			}
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
			existing, err := st.RunsBetween(ctx, d.ID, from, to)
			if err != nil {
				return err
			}
			plan, err := scheduler.PlanBackfill(d, from, to, reprocess, existing)
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("backfill %s: %v", d.ID, err)}
			}
			out := cmd.OutOrStdout()
			// New runs and their audit entry in one transaction; reruns are
			// clears, each in its own.
			var runs []string
			err = st.InTx(ctx, func(q store.Q) error {
				created := 0
				for _, step := range plan {
					if !step.Create {
						continue
					}
					runID, ok, err := scheduler.CreateRun(ctx, q, d, "backfill", step.LogicalDate, confJSON)
					if err != nil {
						return err
					}
					if ok {
						runs = append(runs, runID)
						created++
						fmt.Fprintf(out, "queued %s\n", runID)
					}
				}
				if created == 0 {
					return nil
				}
				e := cliEvent("backfill", map[string]any{"start": start, "end": end, "runs": created, "reprocess_behavior": reprocess})
				e.DagID = d.ID
				return q.RecordEvent(ctx, e)
			})
			if err != nil {
				return err
			}
			reran, skipped := 0, 0
			for _, step := range plan {
				switch {
				case step.Rerun:
					audit := cliEvent("clear", map[string]any{"backfill": true, "reprocess_behavior": reprocess})
					audit.DagID, audit.RunID = d.ID, step.Existing.RunID
					if _, err := scheduler.ClearRun(ctx, st, app.Parser(), *step.Existing, scheduler.ClearRequest{Audit: &audit}); err != nil {
						return err
					}
					runs = append(runs, step.Existing.RunID)
					reran++
					fmt.Fprintf(out, "rerunning %s (was %s)\n", step.Existing.RunID, step.Existing.State)
				case step.Skip != "":
					skipped++
					fmt.Fprintf(out, "skipped %s: %s\n", step.LogicalDate.Format(time.RFC3339), step.Skip)
				}
			}
			fmt.Fprintf(out, "%s: %d backfill runs queued, %d rerun, %d skipped\n", d.ID, len(runs)-reran, reran, skipped)
			if !wait || len(runs) == 0 {
				return nil
			}
			ends, err := listenRunEnds(ctx, st)
			if err != nil {
				return err
			}
			failed := 0
			for _, runID := range runs {
				state, err := waitForRun(ctx, st, ends, d.ID, runID, io.Discard, waitFallbackPoll)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "run %s %s\n", runID, state)
				if state != runstate.RunSuccess {
					failed++
				}
			}
			if failed > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%d of %d backfill runs failed", failed, len(runs))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&start, "start", "", "first logical date (YYYY-MM-DD or RFC3339)")
	cmd.Flags().StringVar(&end, "end", "", "last logical date (YYYY-MM-DD or RFC3339)")
	cmd.Flags().StringVar(&reprocess, "reprocess-behavior", scheduler.ReprocessNone,
		"a date that already has a run: none (leave it), failed (rerun it if it failed), completed (rerun it if it finished)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the runs to finish; exit 1 if one fails")
	conf.register(cmd)
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
