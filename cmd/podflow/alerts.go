package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/podflow/podflow/internal/alerts"
	"github.com/podflow/podflow/internal/store"
)

func init() {
	extraCommands = append(extraCommands, func(app *App, root, _ *cobra.Command) {
		a := &cobra.Command{Use: "alerts", Short: "Read the alerts written by callbacks and deadlines, and their delivery"}
		a.AddCommand(newAlertsListCmd(app))
		root.AddCommand(a)
		n := &cobra.Command{Use: "notifiers", Short: "The notifiers of podflow.yaml"}
		n.AddCommand(newNotifiersListCmd(app), newNotifiersTestCmd(app))
		root.AddCommand(n)
	})
}

// alertRecord is an alert as -o json|yaml print it.
type alertRecord struct {
	ID        string          `json:"id"`
	CreatedAt time.Time       `json:"created_at"`
	Event     string          `json:"event"`
	Notifier  string          `json:"notifier"`
	DagID     string          `json:"dag_id"`
	RunID     string          `json:"run_id"`
	TaskID    string          `json:"task_id,omitempty"`
	TryNumber int             `json:"try_number"`
	State     string          `json:"state"`
	Attempts  int             `json:"attempts"`
	SentAt    *time.Time      `json:"sent_at,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	Payload   json.RawMessage `json:"payload"`
}

func newAlertsListCmd(app *App) *cobra.Command {
	var output string
	var failed bool
	var f store.AlertFilter
	cmd := &cobra.Command{
		Use:   "list [--failed] [--dag-id D] [--run-id R] [--limit N]",
		Short: "List alerts, newest first: what fired, where it went, whether it arrived",
		Long: `List lists the alerts callbacks and deadlines wrote, newest first, with
their delivery state: pending (not delivered yet; retrying), sent, or failed
(the scheduler gave up after alerts.give_up_after). --failed shows only the
given-up ones.`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if f.Limit < 1 || f.Limit > 10000 {
				return &exitError{code: 2, msg: fmt.Sprintf("--limit %d: want 1 to 10000", f.Limit)}
			}
			return checkOutput(output)
		},
		RunE: app.withStore(func(cmd *cobra.Command, _ []string, st *store.Store) error {
			if failed {
				f.State = "failed"
			}
			list, err := st.ListAlerts(cmd.Context(), f)
			if err != nil {
				return err
			}
			records := make([]alertRecord, len(list))
			l := listing{header: []string{"CREATED", "EVENT", "NOTIFIER", "DAG_ID", "RUN_ID", "TASK_ID", "TRY", "STATE", "ATTEMPTS", "LAST_ERROR"}, records: records}
			for i, a := range list {
				records[i] = alertRecord{ID: a.ID, CreatedAt: a.CreatedAt, Event: a.Event, Notifier: a.Notifier, DagID: a.DagID,
					RunID: a.RunID, TaskID: a.TaskID, TryNumber: a.TryNumber, State: a.State, Attempts: a.Attempts,
					SentAt: a.SentAt, LastError: a.LastError, Payload: a.Payload}
				l.add(fmtTime(&a.CreatedAt), a.Event, a.Notifier, a.DagID, a.RunID, dash(a.TaskID), fmt.Sprint(a.TryNumber),
					a.State, fmt.Sprint(a.Attempts), dash(excerpt(a.LastError, 80)))
			}
			return l.print(cmd.OutOrStdout(), output)
		}),
	}
	cmd.Flags().BoolVar(&failed, "failed", false, "only alerts given up on")
	cmd.Flags().StringVar(&f.DagID, "dag-id", "", "only this DAG's alerts")
	cmd.Flags().StringVar(&f.RunID, "run-id", "", "only this run's alerts")
	cmd.Flags().IntVar(&f.Limit, "limit", 100, "at most this many alerts")
	addOutputFlag(cmd, &output)
	return cmd
}

func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func newNotifiersListCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the notifiers podflow.yaml declares",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			l := listing{header: []string{"NAME", "TYPE"}}
			for _, name := range cfg.NotifierNames() {
				l.add(name, cfg.Notifiers[name].Type)
			}
			return l.print(cmd.OutOrStdout(), outputTable)
		},
	}
}

func newNotifiersTestCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "test NAME",
		Short: "Send a test message through a notifier and print the receiver's answer",
		Long: `Test sends one message of event "test" through the notifier, as the
scheduler would (same signature, headers and template), and prints the
receiver's status and answer. It exits 1 when the receiver refuses it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := app.Config()
			if err != nil {
				return err
			}
			name := args[0]
			n, ok := cfg.Notifiers[name]
			if !ok {
				return &exitError{code: 2, msg: fmt.Sprintf("notifier %q is not declared in %s (declared: %v)", name, cfgPath(cfg.Path), cfg.NotifierNames())}
			}
			s, err := alerts.New(name, n, os.Getenv)
			if err != nil {
				return err
			}
			timeout := s.Timeout()
			if timeout <= 0 {
				timeout = cfg.Alerts.Timeout
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			m := testMessage(name, cfg.Alerts.BaseURL)
			res, err := s.Send(ctx, m)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "delivery %s to %s (%s)\n", m.ID, name, n.Type)
			if res.StatusCode != 0 {
				fmt.Fprintf(out, "status %d\n", res.StatusCode)
			}
			if res.Response != "" {
				fmt.Fprintf(out, "answer: %s\n", res.Response)
			}
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("notifier %s: %v", name, err)}
			}
			fmt.Fprintln(out, "delivered")
			return nil
		},
	}
}

func cfgPath(p string) string {
	if p == "" {
		return "the configuration (no podflow.yaml read)"
	}
	return p
}

// testMessage is what notifiers test sends.
func testMessage(notifier, baseURL string) alerts.Message {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b)
	m := alerts.Message{ID: h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		Event: "test", Notifier: notifier, DagID: "podflow_test", RunID: "test", State: "test",
		LogicalDate: time.Now().UTC(), CreatedAt: time.Now().UTC(), Link: alerts.RunLink(baseURL, "podflow_test", "test")}
	m.Title = alerts.Title(m)
	m.Text = m.Title + "\nIf you read this, notifier " + notifier + " works."
	return m
}
