package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/scheduler"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		root.AddCommand(newTriggerCmd(app))
	})
}

func newTriggerCmd(app *App) *cobra.Command {
	var conf confFlags
	var logical string
	var wait bool
	var apiURL string
	cmd := &cobra.Command{
		Use:   "trigger DAG_ID",
		Short: "Create a manual run of a DAG (paused or not)",
		Long: "Create a manual run of a DAG (paused or not). With --wait, follow it and exit 0 if it " +
			"succeeded, 1 if it failed, 2 on a usage or connection error.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			confJSON, _, err := conf.load(cmd.InOrStdin())
			if err != nil {
				return err
			}
			at := time.Now().UTC().Truncate(time.Microsecond)
			if logical != "" {
				if at, err = time.Parse(time.RFC3339, logical); err != nil {
					return fmt.Errorf("--logical-date %q: want RFC3339, e.g. 2026-01-01T00:00:00Z", logical)
				}
			}
			if apiURL != "" {
				var given *time.Time // the server's clock decides "now"
				if logical != "" {
					given = &at
				}
				return triggerThroughAPI(ctx, cmd, apiURL, args[0], confJSON, given, wait)
			}
			// One connection does it all, the wait's LISTEN too: a second
			// one would cost a PostgreSQL backend and an authentication.
			st, err := app.StoreOneConn(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			var ends *runEnds
			if wait { // listening before the run exists: its end cannot be missed
				if ends, err = listenRunEnds(ctx, st); err != nil {
					return err
				}
			}
			d, err := app.LoadDAG(ctx, st, args[0])
			if err != nil {
				return err
			}
			var runID string
			var created bool
			err = st.InTx(ctx, func(q store.Q) error {
				var err error
				runID, created, err = scheduler.CreateRun(ctx, q, d, "manual", at, confJSON)
				if err != nil || !created {
					return err
				}
				e := cliEvent("trigger", map[string]any{"logical_date": at})
				e.DagID, e.RunID = d.ID, runID
				return q.RecordEvent(ctx, e)
			})
			if err != nil {
				return err
			}
			if !created {
				return fmt.Errorf("a run %s of %s already exists", runID, d.ID)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "triggered %s run %s\n", d.ID, runID)
			if !wait {
				return nil
			}
			state, err := waitForRun(ctx, st, ends, d.ID, runID, cmd.ErrOrStderr(), waitFallbackPoll)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run %s %s\n", runID, state)
			if state != runstate.RunSuccess {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	conf.register(cmd)
	cmd.Flags().StringVar(&logical, "logical-date", "", "logical date (RFC3339; default now)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the run to finish, showing progress; exit 1 if it fails")
	cmd.Flags().StringVar(&apiURL, "api", os.Getenv("PODFLOW_API_URL"),
		"trigger through this webserver's REST API instead of the database (env PODFLOW_API_URL; token or API key in PODFLOW_API_TOKEN)")
	return cmd
}

// triggerThroughAPI is trigger for users without database access.
func triggerThroughAPI(ctx context.Context, cmd *cobra.Command, apiURL, dagID string, conf []byte, at *time.Time, wait bool) error {
	c, err := newAPIClient(apiURL)
	if err != nil {
		return err
	}
	runID, err := c.triggerRun(ctx, dagID, conf, at)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "triggered %s run %s\n", dagID, runID)
	if !wait {
		return nil
	}
	state, err := c.waitRun(ctx, dagID, runID, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "run %s %s\n", runID, state)
	if state != runstate.RunSuccess {
		return &exitError{code: 1}
	}
	return nil
}

// waitFallbackPoll is how often --wait reads the run when no notification
// came: the run-finished NOTIFY is what ends a wait, this only covers a
// lost one (when the connection was lost and replaced).
const waitFallbackPoll = 2 * time.Second

// runEnds wakes a wait when a run may have ended: the notification that the
// transaction ending a run sends (store.ChannelTaskFinished), read on the
// store's own connection(s) between queries, not on one of its own.
type runEnds struct {
	pool      *pgxpool.Pool
	listening map[*pgx.Conn]bool
}

// listenRunEnds makes st's connection listen for run ends. With a pool of
// one connection (App.StoreOneConn) the LISTEN, the queries and the wait
// share it; with more, each connection a wait gets listens from then on.
func listenRunEnds(ctx context.Context, st *store.Store) (*runEnds, error) {
	r := &runEnds{pool: st.Pool, listening: map[*pgx.Conn]bool{}}
	c, err := st.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("listen for run ends: %w", err)
	}
	defer c.Release()
	return r, r.listen(ctx, c.Conn())
}

func (r *runEnds) listen(ctx context.Context, c *pgx.Conn) error {
	_, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{store.ChannelTaskFinished}.Sanitize())
	if err != nil {
		return fmt.Errorf("listen for run ends: %w", err)
	}
	r.listening[c] = true
	return nil
}

// wait returns when a run may have ended (a notification came), after d,
// or with ctx's error. A connection that did not listen yet (the first was
// lost and replaced) listens from now on, and wait returns at once: the
// caller reads the run again, so an end in between is not missed.
func (r *runEnds) wait(ctx context.Context, d time.Duration) error {
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	if !r.listening[c.Conn()] {
		return r.listen(ctx, c.Conn())
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if _, err := c.Conn().WaitForNotification(wctx); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	// A notification, d passed, or a broken connection (the pool replaces
	// it at the next acquire, and the caller's read reports a database
	// that is gone).
	return nil
}

// waitForRun follows a run until it finishes and returns its final state.
// It learns of the end from ends, the run-finished notification (read
// every fallback without one); on a terminal it also shows a live progress
// line on w.
func waitForRun(ctx context.Context, st *store.Store, ends *runEnds, dagID, runID string, w io.Writer, fallback time.Duration) (string, error) {
	live := isTerminal(w)
	interval := fallback
	if live {
		interval = 250 * time.Millisecond
	}
	last := ""
	for {
		run, err := st.Run(ctx, dagID, runID)
		if err != nil {
			return "", err
		}
		done := run.State == runstate.RunSuccess || run.State == runstate.RunFailed
		if live || done {
			tis, err := st.TaskInstances(ctx, run.PK)
			if err != nil {
				return "", err
			}
			line := progressLine(run.State, tis)
			switch {
			case !live: // a pipe or a file: the summary only, as one plain line
				fmt.Fprintln(w, line)
			case line != last:
				fmt.Fprintf(w, "\r\033[K%s", line)
				last = line
			}
			if done && live {
				fmt.Fprintln(w)
			}
		}
		if done {
			return run.State, nil
		}
		if err := ends.wait(ctx, interval); err != nil {
			if live {
				fmt.Fprintln(w)
			}
			return "", err
		}
	}
}

// isTerminal reports whether w is a terminal (a progress line with
// carriage returns would garble a pipe or a file).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func progressLine(runState string, tis []store.TaskInstance) string {
	counts := map[string]int{}
	done := 0
	for _, ti := range tis {
		counts[ti.State]++
		if runstate.Done(ti.State) {
			done++
		}
	}
	states := make([]string, 0, len(counts))
	for s := range counts {
		states = append(states, s)
	}
	sort.Strings(states)
	parts := make([]string, len(states))
	for i, s := range states {
		parts[i] = fmt.Sprintf("%s=%d", s, counts[s])
	}
	return fmt.Sprintf("run %s: %d/%d tasks done (%s)", runState, done, len(tis), strings.Join(parts, " "))
}
