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
	var tiID int64
	err := q.db.QueryRow(ctx, `DELETE FROM triggers WHERE id = $1 RETURNING ti_id`, triggerID).Scan(&tiID)
	if err == pgx.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("fire trigger %d: %w", triggerID, err)
	}
	tag, err := q.db.Exec(ctx, `UPDATE task_instances SET state = 'queued', next_event = $2, queued_at = clock_timestamp(),
			`+appendHistory("'queued'", "try_number")+`
		WHERE id = $1 AND state = 'deferred'`, tiID, []byte(event))
	if err != nil {
		return false, fmt.Errorf("resume task instance %d: %w", tiID, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	return true, q.Notify(ctx, ChannelTaskQueued, "")
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
