// Package dagwatch is one process's shared watch on the states of other
// DAGs' runs and task instances, for the waiters that depend on them
// (external_task_sensor, trigger_dag_run's wait_for_completion).
//
//	Postgres trigger ──NOTIFY podflow_state_changed──▶ notifier (the process's one LISTEN conn)
//	      ──▶ Hub: one batched query for every target waited on ──▶ each Wait whose condition holds returns
//
// However many waits a process holds, it uses the one LISTEN connection of
// its notifier and one pooled connection for the time of each batched
// query; no wait polls on its own. Notifications are hints (some may be
// lost while the LISTEN connection reconnects), so the hub also re-checks
// every Fallback (30 s).
package dagwatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"

	"github.com/podflow/podflow/internal/notifier"
	"github.com/podflow/podflow/internal/store"
)

// Target is a run of a DAG — by run id, else by logical date — or one task
// instance of it (TaskID set; a mapped task's first instance).
type Target struct {
	DagID       string
	RunID       string
	LogicalDate time.Time
	TaskID      string
}

func (t Target) String() string {
	at := t.RunID
	if at == "" {
		at = "logical date " + t.LogicalDate.UTC().Format(time.RFC3339)
	}
	if t.TaskID == "" {
		return fmt.Sprintf("run of %s at %s", t.DagID, at)
	}
	return fmt.Sprintf("task %s.%s at %s", t.DagID, t.TaskID, at)
}

// DefaultFallback is how often the hub re-checks without a notification.
const DefaultFallback = 30 * time.Second

// minInterval spaces the hub's queries: under a storm of state changes
// (thousands of tasks a second finishing anywhere) it queries at most 20
// times a second, whatever the number of notifications.
const minInterval = 50 * time.Millisecond

// Hub batches the waits of one process.
type Hub struct {
	db       *store.Store
	sub      *notifier.Subscription // nil: fallback checks only
	log      hclog.Logger
	Fallback time.Duration

	mu      sync.Mutex
	waits   map[*wait]struct{}
	kick    chan struct{}
	started bool

	// Queries counts batched state queries (for the benchmark).
	queries int64
}

type wait struct {
	target Target
	done   func(state string) bool
	result chan string
}

// New returns a hub reading states from db and woken by n's
// ChannelStateChanged (n may be nil: then it only re-checks every Fallback;
// n must listen on store.ChannelStateChanged). Run must run for waits to
// end.
func New(db *store.Store, n *notifier.Notifier, logger hclog.Logger) (*Hub, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	h := &Hub{db: db, log: logger, Fallback: DefaultFallback, waits: map[*wait]struct{}{}, kick: make(chan struct{}, 1)}
	if n != nil {
		sub, err := n.Subscribe(store.ChannelStateChanged)
		if err != nil {
			return nil, err
		}
		h.sub = sub
	}
	return h, nil
}

// Wait blocks until done holds for the target's state ("" while it does
// not exist yet) and returns that state, or until ctx ends.
func (h *Hub) Wait(ctx context.Context, t Target, done func(state string) bool) (string, error) {
	w := &wait{target: t, done: done, result: make(chan string, 1)}
	h.mu.Lock()
	h.waits[w] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.waits, w)
		h.mu.Unlock()
	}()
	h.wake() // a new wait is checked at once: its target may be done already
	select {
	case s := <-w.result:
		return s, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Waiting is how many waits are pending.
func (h *Hub) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waits)
}

// Queries is how many batched state queries the hub ran.
func (h *Hub) Queries() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.queries
}

func (h *Hub) wake() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Run checks the waits on every notification, every new wait and every
// Fallback, until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	var notified <-chan struct{}
	if h.sub != nil {
		notified = h.sub.C
		defer h.sub.Close()
	}
	fallback := time.NewTicker(h.Fallback)
	defer fallback.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-notified:
		case <-h.kick:
		case <-fallback.C:
		}
		if err := h.check(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("check the states waited on", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(minInterval):
		}
	}
}

// check reads every pending target's state in one query and ends the
// waits whose condition holds.
func (h *Hub) check(ctx context.Context) error {
	h.mu.Lock()
	byTarget := map[Target][]*wait{}
	for w := range h.waits {
		byTarget[w.target] = append(byTarget[w.target], w)
	}
	h.mu.Unlock()
	if len(byTarget) == 0 {
		return nil
	}
	targets := make([]Target, 0, len(byTarget))
	for t := range byTarget {
		targets = append(targets, t)
	}
	states, err := States(ctx, h.db, targets)
	h.mu.Lock()
	h.queries++
	h.mu.Unlock()
	if err != nil {
		return err
	}
	for i, t := range targets {
		for _, w := range byTarget[t] {
			if w.done(states[i]) {
				select {
				case w.result <- states[i]:
				default:
				}
			}
		}
	}
	return nil
}

// States reads the current state of each target in one statement ("" for
// a target that does not exist yet). A target by logical date reads the
// newest run of the DAG with that logical date.
func States(ctx context.Context, db *store.Store, targets []Target) ([]string, error) {
	n := len(targets)
	dags, runs, tasks := make([]string, n), make([]string, n), make([]string, n)
	logicals := make([]time.Time, n)
	for i, t := range targets {
		dags[i], runs[i], tasks[i], logicals[i] = t.DagID, t.RunID, t.TaskID, t.LogicalDate
	}
	rows, err := db.Pool.Query(ctx, `SELECT t.i, coalesce(x.state, '')
		FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[]) WITH ORDINALITY AS t(dag_id, run_id, logical, task_id, i)
		LEFT JOIN LATERAL (
			SELECT CASE WHEN t.task_id = '' THEN r.state ELSE
				(SELECT ti.state FROM task_instances ti WHERE ti.run_pk = r.id AND ti.task_id = t.task_id ORDER BY ti.map_index LIMIT 1) END AS state
			FROM dag_runs r
			WHERE r.dag_id = t.dag_id AND ((t.run_id <> '' AND r.run_id = t.run_id) OR (t.run_id = '' AND r.logical_date = t.logical))
			ORDER BY r.id DESC LIMIT 1) x ON true`, dags, runs, logicals, tasks)
	if err != nil {
		return nil, fmt.Errorf("read the states of %d waited-on targets: %w", n, err)
	}
	out := make([]string, n)
	var i int64
	var state string
	_, err = pgx.ForEachRow(rows, []any{&i, &state}, func() error {
		out[i-1] = state
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the states of %d waited-on targets: %w", n, err)
	}
	return out, nil
}
