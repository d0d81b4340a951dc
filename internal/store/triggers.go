package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// NewTrigger is a trigger to create with a deferral.
type NewTrigger struct {
	TaskInstanceID int64
	Kind           string
	Args           json.RawMessage
	Deadline       time.Time // zero = none
	Method         string    // resume step
}

// Trigger is a stored trigger.
type Trigger struct {
	ID             int64
	TaskInstanceID int64
	Kind           string
	Args           json.RawMessage
	Deadline       *time.Time
	Owner          string
	// TakenFrom is the triggerer that held it before this claim, when its
	// heartbeat had stopped (empty for a trigger nobody held), and
	// TakenFromBeat that triggerer's last heartbeat (nil: its row is gone).
	TakenFrom     string
	TakenFromBeat *time.Time
}

// CreateTrigger stores a trigger and notifies triggerers at commit.
func (q Q) CreateTrigger(ctx context.Context, t NewTrigger) (int64, error) {
	var id int64
	err := q.db.QueryRow(ctx, `INSERT INTO triggers (ti_id, kind, args, deadline) VALUES ($1, $2, $3, $4) RETURNING id`,
		t.TaskInstanceID, t.Kind, []byte(t.Args), nullTime(t.Deadline)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create trigger for task instance %d: %w", t.TaskInstanceID, err)
	}
	return id, q.Notify(ctx, ChannelTriggerCreated, strconv.FormatInt(id, 10))
}

// ClaimTriggers takes up to n triggers that are unowned or owned by a
// triggerer whose heartbeat is older than threshold.
func (q Q) ClaimTriggers(ctx context.Context, owner string, n int, threshold time.Duration) ([]Trigger, error) {
	rows, err := q.db.Query(ctx, `WITH c AS (
			SELECT tr.id, tr.owner_id AS prev, h.heartbeat_at AS prev_beat FROM triggers tr LEFT JOIN heartbeats h ON h.id = tr.owner_id
			WHERE tr.owner_id IS NULL OR h.id IS NULL OR h.heartbeat_at < now() - $3::interval
			ORDER BY tr.id LIMIT $2 FOR UPDATE OF tr SKIP LOCKED)
		UPDATE triggers t SET owner_id = $1 FROM c WHERE t.id = c.id
		RETURNING t.id, t.ti_id, t.kind, t.args, t.deadline, t.owner_id, coalesce(c.prev, ''), c.prev_beat`, owner, n, threshold.String())
	if err != nil {
		return nil, fmt.Errorf("claim triggers: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Trigger, error) {
		var t Trigger
		err := r.Scan(&t.ID, &t.TaskInstanceID, &t.Kind, &t.Args, &t.Deadline, &t.Owner, &t.TakenFrom, &t.TakenFromBeat)
		return t, err
	})
}

// OwnedTriggerIDs lists the ids of triggers owner holds.
func (q Q) OwnedTriggerIDs(ctx context.Context, owner string) ([]int64, error) {
	rows, err := q.db.Query(ctx, `SELECT id FROM triggers WHERE owner_id = $1`, owner)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// ExistingTriggerIDs returns those of ids whose trigger rows still exist
// (whoever owns them).
func (q Q) ExistingTriggerIDs(ctx context.Context, ids []int64) ([]int64, error) {
	rows, err := q.db.Query(ctx, `SELECT id FROM triggers WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("existing triggers: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// ReleaseTriggers gives up owner's triggers so another triggerer takes them.
func (q Q) ReleaseTriggers(ctx context.Context, owner string) error {
	_, err := q.db.Exec(ctx, `UPDATE triggers SET owner_id = NULL WHERE owner_id = $1`, owner)
	if err != nil {
		return fmt.Errorf("release triggers: %w", err)
	}
	return q.Notify(ctx, ChannelTriggerCreated, "")
}

// FireTrigger delivers a trigger's event: the task instance goes deferred →
// queued with the event, only if still deferred, the trigger is deleted and
// the workers are woken at commit — a fired trigger queues its task without
// a scheduling loop tick. ok is false when the event changed nothing
// (duplicate, or the task instance was cleared or failed meanwhile).
func (q Q) FireTrigger(ctx context.Context, triggerID int64, event json.RawMessage) (bool, error) {
	ok, err := q.FireTriggers(ctx, []int64{triggerID}, []json.RawMessage{event})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

// FireTriggers is FireTrigger for many triggers in one statement (a
// triggerer delivering the events that arrived together: 10,000 pods
// finishing at once are a few hundred commits, not 10,000), and one wake-up.
// ok[i] tells whether triggerIDs[i]'s event applied.
func (q Q) FireTriggers(ctx context.Context, triggerIDs []int64, events []json.RawMessage) ([]bool, error) {
	if len(triggerIDs) != len(events) {
		return nil, fmt.Errorf("fire triggers: %d ids, %d events", len(triggerIDs), len(events))
	}
	evs := make([][]byte, len(events))
	for i, e := range events {
		evs[i] = e
	}
	rows, err := q.db.Query(ctx, `WITH fired AS (
			DELETE FROM triggers WHERE id = ANY($1) RETURNING id, ti_id),
		e AS (SELECT * FROM unnest($1::bigint[], $2::jsonb[]) AS e(id, event)),
		resumed AS (
			UPDATE task_instances ti SET state = 'queued', next_event = e.event, queued_at = clock_timestamp(),
				`+appendHistory("'queued'", "ti.try_number")+`
			FROM fired JOIN e ON e.id = fired.id
			WHERE ti.id = fired.ti_id AND ti.state = 'deferred'
			RETURNING fired.id)
		SELECT id FROM resumed`, triggerIDs, evs)
	if err != nil {
		return nil, fmt.Errorf("fire triggers: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("fire triggers: %w", err)
	}
	applied := make(map[int64]bool, len(done))
	for _, id := range done {
		applied[id] = true
	}
	ok := make([]bool, len(triggerIDs))
	for i, id := range triggerIDs {
		ok[i] = applied[id]
	}
	if len(done) == 0 {
		return ok, nil
	}
	return ok, q.Notify(ctx, ChannelTaskQueued, "")
}

// SilentOwner is a triggerer that holds triggers and has not beaten for a
// while, but not yet long enough to lose them.
type SilentOwner struct {
	Owner    string
	Triggers int
	LastBeat time.Time
}

// SilentTriggerOwners lists the triggerers other than self holding triggers
// whose last heartbeat is between quiet and threshold ago: their triggers
// will be taken over when threshold passes.
func (q Q) SilentTriggerOwners(ctx context.Context, self string, quiet, threshold time.Duration) ([]SilentOwner, error) {
	rows, err := q.db.Query(ctx, `SELECT tr.owner_id, count(*), h.heartbeat_at FROM triggers tr JOIN heartbeats h ON h.id = tr.owner_id
		WHERE tr.owner_id <> $1 AND h.heartbeat_at < now() - $2::interval AND h.heartbeat_at >= now() - $3::interval
		GROUP BY tr.owner_id, h.heartbeat_at ORDER BY tr.owner_id`, self, quiet.String(), threshold.String())
	if err != nil {
		return nil, fmt.Errorf("silent triggerers: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (SilentOwner, error) {
		var o SilentOwner
		err := r.Scan(&o.Owner, &o.Triggers, &o.LastBeat)
		return o, err
	})
}
