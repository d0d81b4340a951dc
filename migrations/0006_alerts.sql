-- Alerts (#13). A DAG version's callbacks become alert_rules when the
-- version is stored; every store transition that moves a task instance or a
-- run inserts the matching rules' alerts into alert_outbox in the statement
-- that makes the change, so an alert exists exactly when its state change
-- committed. The scheduler's delivery loop sends them (any replica,
-- FOR UPDATE SKIP LOCKED) and records each try in alert_attempts.

CREATE TABLE alert_rules (
    dag_hash    text NOT NULL REFERENCES dag_versions(hash) ON DELETE CASCADE,
    task_id     text NOT NULL,          -- '' for the run's callbacks
    event       text NOT NULL,          -- failure | retry | success | execute | skipped
    notifier    text NOT NULL,          -- a name in podflow.yaml's notifiers
    message     text NOT NULL DEFAULT '',  -- Jinja template; '' = the notifier's default
    PRIMARY KEY (dag_hash, task_id, event, notifier)
);

-- A DAG version's deadline (at most one).
CREATE TABLE alert_deadlines (
    dag_hash    text PRIMARY KEY REFERENCES dag_versions(hash) ON DELETE CASCADE,
    reference   text NOT NULL,          -- logical_date | queued_at | fixed
    fixed_time  time,                   -- reference fixed: time of day …
    fixed_zone  text,                   -- … in this zone
    delay       interval NOT NULL,      -- after the reference
    notifiers   text[] NOT NULL,
    messages    text[] NOT NULL
);

-- The deadline check (every few seconds in each scheduler) walks from the
-- few versions with a deadline to their runs.
CREATE INDEX dag_runs_hash ON dag_runs (dag_hash);

CREATE TABLE alert_outbox (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- X-Podflow-Delivery
    -- Set for alerts that must exist once (a try's event, a run's deadline):
    -- a transition repeated by a second actor inserts nothing.
    dedup_key       text UNIQUE,
    notifier        text NOT NULL,
    event           text NOT NULL,
    dag_id          text NOT NULL,
    run_id          text NOT NULL,
    task_id         text NOT NULL DEFAULT '',
    map_index       integer NOT NULL DEFAULT -1,
    try_number      integer NOT NULL DEFAULT 0,
    message         text NOT NULL DEFAULT '',
    -- What the message is rendered from: state, error, logical_date, …, as
    -- they were when the alert was written.
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending',  -- pending | sent | failed (gave up)
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_outbox_run ON alert_outbox (dag_id, run_id, created_at);
CREATE INDEX alert_outbox_created ON alert_outbox (created_at DESC);

CREATE TABLE alert_attempts (
    id          bigserial PRIMARY KEY,
    alert_id    uuid NOT NULL REFERENCES alert_outbox(id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    duration_ms integer NOT NULL,
    status_code integer,                -- HTTP status or SMTP reply code; NULL when none came
    response    text,                   -- the receiver's answer (trimmed)
    error       text
);
CREATE INDEX alert_attempts_alert ON alert_attempts (alert_id, attempt);
