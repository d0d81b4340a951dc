package scheduler

import (
	"context"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/store"
)

// saveAlertRules stores d's callbacks and deadline with its version, for
// the store's transitions to write alerts from.
func saveAlertRules(ctx context.Context, q store.Q, d *dag.DAG) error {
	rules := AlertRules(d)
	var dl *store.DeadlineRule
	if d.Deadline != nil {
		dl = &store.DeadlineRule{Reference: d.Deadline.Reference, FixedTime: d.Deadline.FixedTime,
			FixedZone: d.Deadline.FixedZone, Interval: d.Deadline.Interval}
		for _, c := range d.Deadline.Notify {
			dl.Notifiers = append(dl.Notifiers, c.Notifier)
			dl.Messages = append(dl.Messages, c.Message)
		}
	}
	if len(rules) == 0 && dl == nil {
		return nil
	}
	return q.SaveAlertRules(ctx, d.Hash, rules, dl)
}

// AlertRules flattens a DAG's callbacks (the run's with TaskID "") into
// rules; a notifier named twice for one event keeps its first message.
func AlertRules(d *dag.DAG) []store.AlertRule {
	var out []store.AlertRule
	seen := map[store.AlertRule]bool{}
	add := func(taskID string, cbs dag.Callbacks) {
		for event, list := range cbs {
			for _, c := range list {
				key := store.AlertRule{TaskID: taskID, Event: event, Notifier: c.Notifier}
				if !seen[key] {
					seen[key] = true
					out = append(out, store.AlertRule{TaskID: taskID, Event: event, Notifier: c.Notifier, Message: c.Message})
				}
			}
		}
	}
	add("", d.Callbacks)
	for _, t := range d.Tasks {
		add(t.ID, t.Callbacks)
	}
	return out
}
