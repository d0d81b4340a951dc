-- Cross-DAG dependencies (#16): assets, their events, who produces and
-- consumes them, and a NOTIFY on task-instance and run state changes that
-- wakes database waiters (external_task_sensor, trigger_dag_run).

-- One row per success of a task with outlets, written in the transaction
-- that marks the task successful.
CREATE TABLE asset_events (
    id              bigserial PRIMARY KEY,
    uri             text NOT NULL,
    extra           jsonb NOT NULL DEFAULT '{}',
    source_dag_id   text NOT NULL,
    source_run_id   text NOT NULL,
    source_task_id  text NOT NULL,
    source_map_index integer NOT NULL DEFAULT -1,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX asset_events_uri ON asset_events (uri, id);

-- What each DAG's current version produces (task outlets) and consumes
-- (schedule: {assets: …}); rewritten when the DAG is synced.
CREATE TABLE dag_asset_refs (
    dag_id   text NOT NULL,
    uri      text NOT NULL,
    role     text NOT NULL CHECK (role IN ('producer', 'consumer')),
    task_id  text NOT NULL DEFAULT '',   -- producer: the task with the outlet
    PRIMARY KEY (dag_id, uri, role, task_id)
);
CREATE INDEX dag_asset_refs_uri ON dag_asset_refs (uri);

-- A consumer DAG's progress through each asset's events: the newest event
-- its asset-triggered runs have consumed. Schedulers lock these rows (FOR
-- UPDATE) to create a run, so one set of events makes one run.
CREATE TABLE asset_consumer_progress (
    dag_id         text NOT NULL,
    uri            text NOT NULL,
    last_event_id  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (dag_id, uri)
);

-- The events that triggered an asset_triggered run ({{ triggering_asset_events }}).
ALTER TABLE dag_runs ADD COLUMN asset_events jsonb;

-- Waiters on other DAGs' tasks and runs are woken by the database: every
-- change of a task instance's or run's state to a final state notifies
-- podflow_state_changed with the DAG id (Postgres folds duplicates of one
-- transaction into one notification).
CREATE FUNCTION podflow_notify_state_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('podflow_state_changed', NEW.dag_id);
    RETURN NULL;
END $$;

CREATE TRIGGER task_instances_state_changed AFTER UPDATE OF state ON task_instances
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state
        AND NEW.state IN ('success', 'failed', 'skipped', 'upstream_failed'))
    EXECUTE FUNCTION podflow_notify_state_changed();

CREATE TRIGGER dag_runs_state_changed AFTER UPDATE OF state ON dag_runs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state AND NEW.state IN ('success', 'failed'))
    EXECUTE FUNCTION podflow_notify_state_changed();
