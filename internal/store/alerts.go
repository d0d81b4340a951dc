package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Alerts: the outbox of notifier messages (#13).
//
// A DAG version's callbacks are stored as alert rules (SaveAlertRules). The
// transitions that move task instances and runs carry a CTE (taskAlerts,
// runAlerts) that inserts the alerts their rules ask for in the very
// statement of the state change — the outbox row commits exactly when the
// state does, whichever path made it (a try's outcome, a zombie, a run
// timeout), and a crash before delivery only delays it. The event is keyed
// on the state reached:
//
//	failed → failure   up_for_retry → retry   success → success
//	running → execute  skipped → skipped      (upstream_failed: none)
//
// A task instance's alert exists once per (try, event, notifier): the
// dedup_key makes a repeated transition (a resumed deferral re-entering
// running) write nothing.

// stateEvent maps a state column to its callback event (NULL for states
// that alert nobody).
const stateEvent = `CASE %s WHEN 'failed' THEN 'failure' WHEN 'up_for_retry' THEN 'retry' WHEN 'success' THEN 'success'
	WHEN 'running' THEN 'execute' WHEN 'skipped' THEN 'skipped' END`

// taskAlerts is the CTE (to append to a WITH list) that writes the alerts
// of the task instances in moved, a CTE returning their new rows (RETURNING
// ti.*).
func taskAlerts(moved string) string {
	return `, alerts AS (
		INSERT INTO alert_outbox (dedup_key, notifier, event, dag_id, run_id, task_id, map_index, try_number, message, payload)
		SELECT 'ti:' || m.id || ':' || m.try_number || ':' || ar.event || ':' || ar.notifier,
			ar.notifier, ar.event, m.dag_id, m.run_id, m.task_id, m.map_index, m.try_number, ar.message,
			jsonb_build_object('state', m.state, 'error', coalesce(m.error, ''), 'max_tries', m.max_tries + 1,
				'logical_date', r.logical_date, 'run_type', r.run_type, 'started_at', m.started_at,
				'ended_at', m.ended_at, 'next_retry_at', m.next_retry_at,
				'pod', coalesce(m.external_ns || '/' || m.external_name, ''))
		FROM ` + moved + ` m JOIN dag_runs r ON r.id = m.run_pk
			JOIN alert_rules ar ON ar.dag_hash = r.dag_hash AND ar.task_id = m.task_id
				AND ar.event = ` + fmt.Sprintf(stateEvent, "m.state") + `
		ON CONFLICT (dedup_key) DO NOTHING)`
}

// runAlerts is taskAlerts for runs: moved returns dag_runs rows; reason is
// a SQL text expression for the error (” = the run's failed tasks).
func runAlerts(moved, reason string) string {
	if reason == "" {
		reason = `coalesce((SELECT 'failed tasks: ' || string_agg(t.task_id, ', ' ORDER BY t.task_id)
			FROM task_instances t WHERE t.run_pk = m.id AND t.state = 'failed'), '')`
	}
	return `, alerts AS (
		INSERT INTO alert_outbox (notifier, event, dag_id, run_id, message, payload)
		SELECT ar.notifier, ar.event, m.dag_id, m.run_id, ar.message,
			jsonb_build_object('state', m.state, 'error', CASE WHEN m.state = 'failed' THEN ` + reason + ` ELSE '' END,
				'logical_date', m.logical_date, 'run_type', m.run_type, 'started_at', m.started_at, 'ended_at', m.ended_at)
		FROM ` + moved + ` m JOIN alert_rules ar ON ar.dag_hash = m.dag_hash AND ar.task_id = ''
			AND ar.event = ` + fmt.Sprintf(stateEvent, "m.state") + `)`
}

// AlertRule is one callback of a DAG version: on event of task (or of the
// run when TaskID is ""), send Notifier with Message.
type AlertRule struct {
	TaskID, Event, Notifier, Message string
}

// DeadlineRule is a DAG version's deadline.
type DeadlineRule struct {
	Reference string // logical_date | queued_at | fixed
	FixedTime string // "HH:MM" (fixed)
	FixedZone string // IANA zone (fixed)
	Interval  time.Duration
	Notifiers []string
	Messages  []string
}

// SaveAlertRules stores a DAG version's callbacks and deadline. A version's
// rules never change (the hash is the file's), so saving again is a no-op.
func (q Q) SaveAlertRules(ctx context.Context, hash string, rules []AlertRule, dl *DeadlineRule) error {
	if len(rules) > 0 {
		n := len(rules)
		tasks, events, notifiers, messages := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, r := range rules {
			tasks[i], events[i], notifiers[i], messages[i] = r.TaskID, r.Event, r.Notifier, r.Message
		}
		if _, err := q.db.Exec(ctx, `INSERT INTO alert_rules (dag_hash, task_id, event, notifier, message)
			SELECT $1, t, e, n, m FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(t, e, n, m)
			ON CONFLICT DO NOTHING`, hash, tasks, events, notifiers, messages); err != nil {
			return fmt.Errorf("save alert rules of version %s: %w", short(hash), err)
		}
	}
	if dl != nil {
		var fixed *string
		if dl.FixedTime != "" {
			fixed = &dl.FixedTime
		}
		if _, err := q.db.Exec(ctx, `INSERT INTO alert_deadlines (dag_hash, reference, fixed_time, fixed_zone, delay, notifiers, messages)
			VALUES ($1, $2, $3::time, nullif($4, ''), $5::interval, $6, $7) ON CONFLICT DO NOTHING`,
			hash, dl.Reference, fixed, dl.FixedZone, dl.Interval.String(), dl.Notifiers, dl.Messages); err != nil {
			return fmt.Errorf("save deadline of version %s: %w", short(hash), err)
		}
	}
	return nil
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

// FireDeadlines writes a deadline alert for every run past its DAG
// version's deadline that had not finished by then, once per run and
// notifier, and returns how many it wrote. It looks at every run not
// finished or finished within lookback, so a deadline that passed while no
// scheduler was alive fires when the next one starts.
//
// The deadline: logical_date + interval; queued_at (the run's creation) +
// interval; fixed: the first HH:MM in its zone at or after the run's data
// interval end, plus interval.
func (q Q) FireDeadlines(ctx context.Context, lookback time.Duration) (int64, error) {
	tag, err := q.db.Exec(ctx, `WITH due AS (
			SELECT r.*, d.notifiers, d.messages, dl.at AS deadline_at
			FROM dag_runs r JOIN alert_deadlines d ON d.dag_hash = r.dag_hash,
			LATERAL (SELECT CASE d.reference
				WHEN 'logical_date' THEN r.logical_date + d.delay
				WHEN 'queued_at' THEN r.created_at + d.delay
				ELSE (SELECT CASE WHEN x < r.data_interval_end THEN x + interval '1 day' ELSE x END
					FROM (SELECT ((date(r.data_interval_end AT TIME ZONE d.fixed_zone) + d.fixed_time) AT TIME ZONE d.fixed_zone) AS x) f)
					+ d.delay END AS at) dl
			WHERE (r.state IN ('queued', 'running') OR r.ended_at > now() - $1::interval)
				AND dl.at <= now() AND (r.ended_at IS NULL OR r.ended_at > dl.at))
		INSERT INTO alert_outbox (dedup_key, notifier, event, dag_id, run_id, message, payload)
		SELECT 'deadline:' || due.id || ':' || n.notifier, n.notifier, 'deadline', due.dag_id, due.run_id, n.message,
			jsonb_build_object('state', due.state, 'error', 'not finished by its deadline ' || to_char(due.deadline_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
				'deadline', due.deadline_at, 'logical_date', due.logical_date, 'run_type', due.run_type,
				'started_at', due.started_at, 'ended_at', due.ended_at)
		FROM due, unnest(due.notifiers, due.messages) AS n(notifier, message)
		ON CONFLICT (dedup_key) DO NOTHING`, lookback.String())
	if err != nil {
		return 0, fmt.Errorf("fire deadlines: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Alert is one outbox row.
type Alert struct {
	ID          string
	Notifier    string
	Event       string
	DagID       string
	RunID       string
	TaskID      string
	MapIndex    int
	TryNumber   int
	Message     string
	Payload     json.RawMessage
	State       string // pending | sent | failed
	Attempts    int
	NextAttempt time.Time
	CreatedAt   time.Time
	SentAt      *time.Time
	LastError   string
}

const alertColumns = `a.id::text, a.notifier, a.event, a.dag_id, a.run_id, a.task_id, a.map_index, a.try_number, a.message,
	a.payload, a.state, a.attempts, a.next_attempt_at, a.created_at, a.sent_at, coalesce(a.last_error, '')`

func scanAlert(r pgx.CollectableRow) (Alert, error) {
	var a Alert
	err := r.Scan(&a.ID, &a.Notifier, &a.Event, &a.DagID, &a.RunID, &a.TaskID, &a.MapIndex, &a.TryNumber, &a.Message,
		&a.Payload, &a.State, &a.Attempts, &a.NextAttempt, &a.CreatedAt, &a.SentAt, &a.LastError)
	return a, err
}

// ClaimDueAlerts locks up to n pending alerts whose next attempt is due
// (FOR UPDATE SKIP LOCKED: another replica takes others) and pushes their
// next attempt lease later, so an alert whose sender dies is retried by
// anyone after lease. Call it in its own short transaction.
func (q Q) ClaimDueAlerts(ctx context.Context, n int, lease time.Duration) ([]Alert, error) {
	rows, err := q.db.Query(ctx, `WITH due AS (
			SELECT id FROM alert_outbox WHERE state = 'pending' AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		UPDATE alert_outbox a SET next_attempt_at = now() + $2::interval, attempts = a.attempts + 1
		FROM due WHERE a.id = due.id
		RETURNING `+alertColumns, n, lease.String())
	if err != nil {
		return nil, fmt.Errorf("claim due alerts: %w", err)
	}
	return pgx.CollectRows(rows, scanAlert)
}

// AlertAttempt is one try to deliver an alert.
type AlertAttempt struct {
	Attempt    int
	At         time.Time
	Duration   time.Duration
	StatusCode int // 0 = none
	Response   string
	Error      string
}

// RecordAlertAttempt records a delivery try and the alert's new state:
// sent, or pending again at retryAt, or failed (gave up) when retryAt is
// zero.
func (q Q) RecordAlertAttempt(ctx context.Context, id string, a AlertAttempt, sent bool, retryAt time.Time) error {
	var code *int
	if a.StatusCode != 0 {
		code = &a.StatusCode
	}
	if _, err := q.db.Exec(ctx, `INSERT INTO alert_attempts (alert_id, attempt, at, duration_ms, status_code, response, error)
		VALUES ($1, $2, $3, $4, $5, nullif($6, ''), nullif($7, ''))`,
		id, a.Attempt, a.At, int(a.Duration.Milliseconds()), code, a.Response, a.Error); err != nil {
		return fmt.Errorf("record attempt of alert %s: %w", id, err)
	}
	var err error
	switch {
	case sent:
		_, err = q.db.Exec(ctx, `UPDATE alert_outbox SET state = 'sent', sent_at = $2, last_error = NULL WHERE id = $1`, id, a.At.Add(a.Duration))
	case retryAt.IsZero():
		_, err = q.db.Exec(ctx, `UPDATE alert_outbox SET state = 'failed', last_error = $2 WHERE id = $1`, id, a.Error)
	default:
		_, err = q.db.Exec(ctx, `UPDATE alert_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1`, id, retryAt, a.Error)
	}
	if err != nil {
		return fmt.Errorf("record state of alert %s: %w", id, err)
	}
	return nil
}

// AlertFilter selects alerts to list.
type AlertFilter struct {
	DagID, RunID string // "" = any
	State        string // "" = any
	Limit        int    // 0 = 100
}

// ListAlerts lists alerts, newest first.
func (q Q) ListAlerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := q.db.Query(ctx, `SELECT `+alertColumns+` FROM alert_outbox a
		WHERE ($1 = '' OR a.dag_id = $1) AND ($2 = '' OR a.run_id = $2) AND ($3 = '' OR a.state = $3)
		ORDER BY a.created_at DESC, a.id LIMIT $4`, f.DagID, f.RunID, f.State, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return pgx.CollectRows(rows, scanAlert)
}

// AlertAttempts lists an alert's delivery tries in order.
func (q Q) AlertAttempts(ctx context.Context, id string) ([]AlertAttempt, error) {
	rows, err := q.db.Query(ctx, `SELECT attempt, at, duration_ms, coalesce(status_code, 0), coalesce(response, ''), coalesce(error, '')
		FROM alert_attempts WHERE alert_id = $1 ORDER BY attempt, id`, id)
	if err != nil {
		return nil, fmt.Errorf("list attempts of alert %s: %w", id, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AlertAttempt, error) {
		var a AlertAttempt
		var ms int
		err := r.Scan(&a.Attempt, &a.At, &ms, &a.StatusCode, &a.Response, &a.Error)
		a.Duration = time.Duration(ms) * time.Millisecond
		return a, err
	})
}

// OutboxDepth counts pending alerts, for the metrics.
func (q Q) OutboxDepth(ctx context.Context) (int64, error) {
	var n int64
	if err := q.db.QueryRow(ctx, `SELECT count(*) FROM alert_outbox WHERE state = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending alerts: %w", err)
	}
	return n, nil
}
