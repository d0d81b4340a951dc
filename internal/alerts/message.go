// Package alerts turns outbox rows (written by the store's transitions, see
// internal/store/alerts.go) into messages and delivers them: a webhook with
// an HMAC-SHA256 signature, a Slack incoming webhook, or an email. The
// Deliverer runs in every scheduler next to, never inside, the scheduling
// loop: its own goroutines and per-attempt timeouts, so a receiver that
// hangs slows nothing but its own alerts.
package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/podflow/podflow/internal/store"
	"github.com/podflow/podflow/internal/templating"
)

// Message is one alert ready to send.
type Message struct {
	ID          string    `json:"id"` // also X-Podflow-Delivery: receivers drop duplicates by it
	Event       string    `json:"event"`
	Notifier    string    `json:"notifier"`
	DagID       string    `json:"dag_id"`
	RunID       string    `json:"run_id"`
	TaskID      string    `json:"task_id,omitempty"`
	MapIndex    int       `json:"map_index"`
	TryNumber   int       `json:"try_number"`
	MaxTries    int       `json:"max_tries,omitempty"`
	State       string    `json:"state"`
	Error       string    `json:"error"`
	LogicalDate time.Time `json:"logical_date"`
	Deadline    string    `json:"deadline,omitempty"`
	Link        string    `json:"link"`
	CreatedAt   time.Time `json:"created_at"`
	Title       string    `json:"title"`
	Text        string    `json:"message"` // the rendered message template
}

// payload is what the store wrote with the alert.
type payload struct {
	State       string    `json:"state"`
	Error       string    `json:"error"`
	MaxTries    int       `json:"max_tries"`
	LogicalDate time.Time `json:"logical_date"`
	Deadline    string    `json:"deadline"`
}

// DefaultMessage is the message template when neither the callback nor the
// notifier gives one.
const DefaultMessage = `{{ title }}
DAG {{ dag.dag_id }}, run {{ run_id }}{% if ti.task_id %}, task {{ ti.task_id }} (try {{ ti.try_number }}){% endif %}
{% if exception %}Error: {{ exception }}
{% endif %}{{ link }}`

// NewMessage builds the message of an outbox row and renders its text:
// the callback's template, else the notifier's, else DefaultMessage.
func NewMessage(ctx context.Context, a store.Alert, notifierTemplate, baseURL string) (Message, error) {
	var p payload
	if err := json.Unmarshal(a.Payload, &p); err != nil {
		return Message{}, fmt.Errorf("alert %s: payload: %w", a.ID, err)
	}
	m := Message{ID: a.ID, Event: a.Event, Notifier: a.Notifier, DagID: a.DagID, RunID: a.RunID, TaskID: a.TaskID,
		MapIndex: a.MapIndex, TryNumber: a.TryNumber, MaxTries: p.MaxTries, State: p.State, Error: p.Error,
		LogicalDate: p.LogicalDate.UTC(), Deadline: p.Deadline, CreatedAt: a.CreatedAt.UTC(),
		Link: RunLink(baseURL, a.DagID, a.RunID)}
	m.Title = Title(m)
	src := first(a.Message, notifierTemplate, DefaultMessage)
	text, err := m.render(ctx, src)
	if err != nil && src != DefaultMessage && ctx.Err() == nil {
		// A broken template must not lose the alert: the default text
		// goes out, saying what was wrong.
		def, derr := m.render(ctx, DefaultMessage)
		if derr == nil {
			text, err = def+"\n("+err.Error()+")", nil
		}
	}
	if err != nil {
		return m, err
	}
	m.Text = text
	return m, nil
}

// render renders a template with the task context plus the alert's names.
func (m Message) render(ctx context.Context, src string) (string, error) {
	tpl, err := templating.Compile(src)
	if err != nil {
		return "", fmt.Errorf("message template: %w", err)
	}
	out, err := tpl.Render(ctx, m.templateContext())
	if err != nil {
		return "", fmt.Errorf("message template: %w", err)
	}
	return strings.TrimSpace(out), nil
}

// templateContext is the task context (dag, ti, run_id, ds, …) with the
// alert's own names: state, exception (Airflow's name) and error, event,
// link, title, deadline.
func (m Message) templateContext() *templating.Context {
	return &templating.Context{DagID: m.DagID, TaskID: m.TaskID, RunID: m.RunID, TryNumber: m.TryNumber,
		LogicalDate: m.LogicalDate, DataIntervalStart: m.LogicalDate, DataIntervalEnd: m.LogicalDate,
		Extra: map[string]any{"state": m.State, "exception": m.Error, "error": m.Error, "event": m.Event,
			"link": m.Link, "title": m.Title, "deadline": m.Deadline, "notifier": m.Notifier}}
}

// RunLink is the run's page in the web UI.
func RunLink(baseURL, dagID, runID string) string {
	return strings.TrimRight(baseURL, "/") + "/dags/" + url.PathEscape(dagID) + "/runs/" + url.PathEscape(runID)
}

// Title is the one-line summary of an alert.
func Title(m Message) string {
	what := "Run " + m.RunID + " of " + m.DagID
	if m.TaskID != "" {
		what = "Task " + m.TaskID + " of " + m.DagID
	}
	switch m.Event {
	case "failure":
		return what + " failed"
	case "retry":
		return what + " failed and will retry (try " + fmt.Sprint(m.TryNumber) + ")"
	case "success":
		return what + " succeeded"
	case "execute":
		return what + " started (try " + fmt.Sprint(m.TryNumber) + ")"
	case "skipped":
		return what + " was skipped"
	case "deadline":
		return what + " missed its deadline"
	case "test":
		return "podflow test message from notifier " + m.Notifier
	}
	return what + ": " + m.Event
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// excerpt cuts s to n bytes on a rune boundary, marking the cut.
func excerpt(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
