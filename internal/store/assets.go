package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ChannelStateChanged is notified by the database itself (a trigger of
// migration 0008) whenever a task instance or a run reaches a final state,
// with the DAG id as payload: it wakes waiters on other DAGs
// (external_task_sensor, trigger_dag_run) without polling.
const ChannelStateChanged = "podflow_state_changed"

// NewAssetEvent is an outlet of a task that succeeded: the asset's URI and
// the rendered extra (a JSON object; nil = {}).
type NewAssetEvent struct {
	URI   string
	Extra json.RawMessage
}

// AssetEvent is one recorded update of an asset.
type AssetEvent struct {
	ID             int64           `json:"id"`
	URI            string          `json:"uri"`
	Extra          json.RawMessage `json:"extra"`
	SourceDagID    string          `json:"source_dag_id"`
	SourceRunID    string          `json:"source_run_id"`
	SourceTaskID   string          `json:"source_task_id"`
	SourceMapIndex int             `json:"source_map_index"`
	Timestamp      time.Time       `json:"timestamp"`
}

const assetEventColumns = `id, uri, extra, source_dag_id, source_run_id, source_task_id, source_map_index, created_at`

func scanAssetEvent(r pgx.CollectableRow) (AssetEvent, error) {
	var e AssetEvent
	err := r.Scan(&e.ID, &e.URI, &e.Extra, &e.SourceDagID, &e.SourceRunID, &e.SourceTaskID, &e.SourceMapIndex, &e.Timestamp)
	return e, err
}

// recordAssetEvents writes the asset events of successes that applied (see
// FinishTasks) and wakes the schedulers, which create the consumers' runs.
func (q Q) recordAssetEvents(ctx context.Context, outs []Outcome) error {
	var uris, extras, dags, runs, tasks []string
	var maps []int32
	for _, o := range outs {
		for _, e := range o.AssetEvents {
			extra := string(e.Extra)
			if extra == "" {
				extra = "{}"
			}
			uris, extras = append(uris, e.URI), append(extras, extra)
			dags, runs, tasks, maps = append(dags, o.DagID), append(runs, o.RunID), append(tasks, o.TaskID), append(maps, int32(o.MapIndex))
		}
	}
	if len(uris) == 0 {
		return nil
	}
	_, err := q.db.Exec(ctx, `INSERT INTO asset_events (uri, extra, source_dag_id, source_run_id, source_task_id, source_map_index)
		SELECT * FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::text[], $5::text[], $6::int[])`,
		uris, extras, dags, runs, tasks, maps)
	if err != nil {
		return fmt.Errorf("record asset events: %w", err)
	}
	return q.Notify(ctx, ChannelSchedulerWake, "assets")
}

// AssetRefs are what one DAG version produces and consumes.
type AssetRefs struct {
	Producers map[string][]string // uri → task ids with it as an outlet
	Consumers []string            // uris of schedule: {assets: …}
}

// SaveAssetRefs makes refs the DAG's current producer and consumer
// references. A newly consumed asset starts after its newest event: a DAG
// that begins to consume an asset waits for its next update.
func (q Q) SaveAssetRefs(ctx context.Context, dagID string, refs AssetRefs) error {
	if len(refs.Producers) == 0 && len(refs.Consumers) == 0 {
		// Most DAGs: one round trip on the sync path.
		if _, err := q.db.Exec(ctx, `WITH refs AS (DELETE FROM dag_asset_refs WHERE dag_id = $1)
			DELETE FROM asset_consumer_progress WHERE dag_id = $1`, dagID); err != nil {
			return fmt.Errorf("save asset references of %s: %w", dagID, err)
		}
		return nil
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM dag_asset_refs WHERE dag_id = $1`, dagID); err != nil {
		return fmt.Errorf("save asset references of %s: %w", dagID, err)
	}
	var uris, roles, tasks []string
	for uri, ids := range refs.Producers {
		for _, id := range ids {
			uris, roles, tasks = append(uris, uri), append(roles, "producer"), append(tasks, id)
		}
	}
	for _, uri := range refs.Consumers {
		uris, roles, tasks = append(uris, uri), append(roles, "consumer"), append(tasks, "")
	}
	if len(uris) > 0 {
		if _, err := q.db.Exec(ctx, `INSERT INTO dag_asset_refs (dag_id, uri, role, task_id)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`, dagID, uris, roles, tasks); err != nil {
			return fmt.Errorf("save asset references of %s: %w", dagID, err)
		}
	}
	if _, err := q.db.Exec(ctx, `DELETE FROM asset_consumer_progress WHERE dag_id = $1 AND NOT uri = ANY($2::text[])`,
		dagID, refs.Consumers); err != nil {
		return fmt.Errorf("save asset progress of %s: %w", dagID, err)
	}
	if _, err := q.db.Exec(ctx, `INSERT INTO asset_consumer_progress (dag_id, uri, last_event_id)
		SELECT $1, u, coalesce((SELECT max(id) FROM asset_events WHERE uri = u), 0) FROM unnest($2::text[]) AS u
		ON CONFLICT (dag_id, uri) DO NOTHING`, dagID, refs.Consumers); err != nil {
		return fmt.Errorf("save asset progress of %s: %w", dagID, err)
	}
	return nil
}

// DagsWithNewAssetEvents lists the unpaused consumer DAGs that have events
// they have not consumed yet.
func (q Q) DagsWithNewAssetEvents(ctx context.Context) ([]string, error) {
	rows, err := q.db.Query(ctx, `SELECT DISTINCT p.dag_id FROM asset_consumer_progress p
		JOIN dags d ON d.dag_id = p.dag_id AND NOT d.is_paused AND d.is_active
		WHERE EXISTS (SELECT 1 FROM asset_events e WHERE e.uri = p.uri AND e.id > p.last_event_id)
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("consumer DAGs with new asset events: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// LockNewAssetEvents locks a consumer DAG's progress rows (another
// scheduler doing the same waits, then sees the progress this one made) and
// returns the events of its assets it has not consumed, by URI, oldest
// first. Call it in a transaction.
func (q Q) LockNewAssetEvents(ctx context.Context, dagID string) (map[string][]AssetEvent, error) {
	rows, err := q.db.Query(ctx, `SELECT uri, last_event_id FROM asset_consumer_progress WHERE dag_id = $1 ORDER BY uri FOR UPDATE`, dagID)
	if err != nil {
		return nil, fmt.Errorf("lock asset progress of %s: %w", dagID, err)
	}
	type progress struct {
		uri  string
		last int64
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (progress, error) {
		var p progress
		return p, r.Scan(&p.uri, &p.last)
	})
	if err != nil {
		return nil, fmt.Errorf("lock asset progress of %s: %w", dagID, err)
	}
	out := make(map[string][]AssetEvent, len(ps))
	for _, p := range ps {
		rows, err := q.db.Query(ctx, `SELECT `+assetEventColumns+` FROM asset_events WHERE uri = $1 AND id > $2 ORDER BY id`, p.uri, p.last)
		if err != nil {
			return nil, fmt.Errorf("new events of asset %s: %w", p.uri, err)
		}
		evs, err := pgx.CollectRows(rows, scanAssetEvent)
		if err != nil {
			return nil, fmt.Errorf("new events of asset %s: %w", p.uri, err)
		}
		out[p.uri] = evs
	}
	return out, nil
}

// ConsumeAssetEvents records that a consumer DAG's run consumed the events
// up to these ids, by URI, and stores them with the run.
func (q Q) ConsumeAssetEvents(ctx context.Context, dagID string, runPK int64, upTo map[string]int64, events []AssetEvent) error {
	for uri, id := range upTo {
		if _, err := q.db.Exec(ctx, `UPDATE asset_consumer_progress SET last_event_id = $3
			WHERE dag_id = $1 AND uri = $2 AND last_event_id < $3`, dagID, uri, id); err != nil {
			return fmt.Errorf("advance asset progress of %s on %s: %w", dagID, uri, err)
		}
	}
	raw, err := json.Marshal(events)
	if err != nil {
		return err
	}
	if _, err := q.db.Exec(ctx, `UPDATE dag_runs SET asset_events = $2 WHERE id = $1`, runPK, raw); err != nil {
		return fmt.Errorf("store triggering asset events of run %d: %w", runPK, err)
	}
	return nil
}

// RunAssetEvents returns the events that triggered a run (none for a run
// not triggered by assets).
func (q Q) RunAssetEvents(ctx context.Context, runPK int64) ([]AssetEvent, error) {
	var raw []byte
	if err := q.db.QueryRow(ctx, `SELECT asset_events FROM dag_runs WHERE id = $1`, runPK).Scan(&raw); err != nil {
		return nil, fmt.Errorf("triggering asset events of run %d: %w", runPK, err)
	}
	var evs []AssetEvent
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &evs); err != nil {
			return nil, fmt.Errorf("triggering asset events of run %d: %w", runPK, err)
		}
	}
	return evs, nil
}

// Asset is one URI known from DAGs or events.
type Asset struct {
	URI       string     `json:"uri"`
	Producers []AssetRef `json:"producers"`
	Consumers []string   `json:"consumers"` // dag ids
	Events    int        `json:"events"`
	LastEvent *time.Time `json:"last_event,omitempty"`
}

// AssetRef is a producing task.
type AssetRef struct {
	DagID  string `json:"dag_id"`
	TaskID string `json:"task_id"`
}

// Assets lists every asset some DAG references or some event names, by URI.
func (q Q) Assets(ctx context.Context) ([]Asset, error) {
	rows, err := q.db.Query(ctx, `WITH u AS (SELECT uri FROM dag_asset_refs UNION SELECT DISTINCT uri FROM asset_events)
		SELECT u.uri,
			coalesce((SELECT jsonb_agg(jsonb_build_object('dag_id', dag_id, 'task_id', task_id) ORDER BY dag_id, task_id)
				FROM dag_asset_refs WHERE uri = u.uri AND role = 'producer'), '[]'),
			coalesce((SELECT array_agg(dag_id ORDER BY dag_id) FROM dag_asset_refs WHERE uri = u.uri AND role = 'consumer'), '{}'),
			(SELECT count(*) FROM asset_events WHERE uri = u.uri),
			(SELECT max(created_at) FROM asset_events WHERE uri = u.uri)
		FROM u ORDER BY u.uri`)
	if err != nil {
		return nil, fmt.Errorf("list assets: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Asset, error) {
		var a Asset
		var producers []byte
		if err := r.Scan(&a.URI, &producers, &a.Consumers, &a.Events, &a.LastEvent); err != nil {
			return a, err
		}
		return a, json.Unmarshal(producers, &a.Producers)
	})
}

// AssetEvents lists an asset's events, newest first, at most limit.
func (q Q) AssetEvents(ctx context.Context, uri string, limit int) ([]AssetEvent, error) {
	rows, err := q.db.Query(ctx, `SELECT `+assetEventColumns+` FROM asset_events WHERE uri = $1 ORDER BY id DESC LIMIT $2`, uri, limit)
	if err != nil {
		return nil, fmt.Errorf("events of asset %s: %w", uri, err)
	}
	return pgx.CollectRows(rows, scanAssetEvent)
}
