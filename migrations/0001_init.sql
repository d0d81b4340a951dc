-- podflow's metadata schema. See DESIGN.md "State".

CREATE TABLE dags (
    dag_id          text PRIMARY KEY,
    path            text NOT NULL,
    hash            text,               -- current good version; NULL if it never parsed
    schedule        text NOT NULL DEFAULT '',
    is_paused       boolean NOT NULL DEFAULT false,
    errors          text,               -- last parse errors, NULL when the file is fine
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Broken files that never yielded a dag_id are tracked by path.
CREATE TABLE dag_files (
    path            text PRIMARY KEY,
    hash            text NOT NULL,
    errors          text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dag_versions (
    hash            text PRIMARY KEY,
    dag_id          text NOT NULL,
    source          bytea NOT NULL,
    path            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dag_runs (
    id                  bigserial PRIMARY KEY,
    dag_id              text NOT NULL,
    run_id              text NOT NULL,
    dag_hash            text NOT NULL REFERENCES dag_versions(hash),
    run_type            text NOT NULL,          -- scheduled | manual | backfill
    state               text NOT NULL,          -- queued | running | success | failed
    logical_date        timestamptz NOT NULL,
    data_interval_start timestamptz NOT NULL,
    data_interval_end   timestamptz NOT NULL,
    conf                jsonb NOT NULL DEFAULT '{}',
    max_active_tasks    integer NOT NULL DEFAULT 16,
    created_at          timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    ended_at            timestamptz,
    UNIQUE (dag_id, run_id)
);
CREATE INDEX dag_runs_active ON dag_runs (dag_id, state) WHERE state IN ('queued', 'running');
CREATE INDEX dag_runs_dag_logical ON dag_runs (dag_id, logical_date);

CREATE TABLE task_instances (
    id               bigserial PRIMARY KEY,
    run_pk           bigint NOT NULL REFERENCES dag_runs(id) ON DELETE CASCADE,
    dag_id           text NOT NULL,
    run_id           text NOT NULL,
    task_id          text NOT NULL,
    map_index        integer NOT NULL DEFAULT -1,
    state            text NOT NULL DEFAULT 'none',
    try_number       integer NOT NULL DEFAULT 0,
    max_tries        integer NOT NULL DEFAULT 0,    -- retries; tries allowed = max_tries + 1
    pool             text NOT NULL DEFAULT 'default_pool',
    priority_weight  integer NOT NULL DEFAULT 1,
    queued_at        timestamptz,
    started_at       timestamptz,
    ended_at         timestamptz,
    next_retry_at    timestamptz,
    owner_id         text,                          -- scheduler process running it
    next_method      text,                          -- resume step after a deferral
    next_event       jsonb,                         -- the trigger's event
    external_ns      text,                          -- e.g. the pod's namespace
    external_name    text,                          -- e.g. the pod's name
    error            text,
    -- Every state it passed through: [{"state", "try", "at"}], appended by
    -- the statement that makes each transition (no extra row per change).
    history          jsonb NOT NULL DEFAULT '[]',
    UNIQUE (run_pk, task_id, map_index)
);
CREATE INDEX task_instances_queued ON task_instances (priority_weight DESC, queued_at, id) WHERE state = 'queued';
CREATE INDEX task_instances_running ON task_instances (owner_id) WHERE state = 'running';
CREATE INDEX task_instances_retry ON task_instances (next_retry_at) WHERE state = 'up_for_retry';
CREATE INDEX task_instances_scheduled ON task_instances (id) WHERE state = 'scheduled';

CREATE TABLE task_logs (
    id          bigserial PRIMARY KEY,
    ti_id       bigint NOT NULL REFERENCES task_instances(id) ON DELETE CASCADE,
    try_number  integer NOT NULL,
    at          timestamptz NOT NULL,
    source      text NOT NULL,
    line        text NOT NULL
);
CREATE INDEX task_logs_ti ON task_logs (ti_id, try_number, id);

CREATE TABLE xcom (
    dag_id      text NOT NULL,
    run_id      text NOT NULL,
    task_id     text NOT NULL,
    map_index   integer NOT NULL DEFAULT -1,
    key         text NOT NULL,
    value       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, run_id, task_id, map_index, key)
);

CREATE TABLE triggers (
    id          bigserial PRIMARY KEY,
    ti_id       bigint NOT NULL REFERENCES task_instances(id) ON DELETE CASCADE,
    kind        text NOT NULL,
    args        jsonb NOT NULL,
    deadline    timestamptz,
    owner_id    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX triggers_owner ON triggers (owner_id);

CREATE TABLE heartbeats (
    id            text PRIMARY KEY,     -- process instance id
    kind          text NOT NULL,        -- scheduler | triggerer
    hostname      text NOT NULL,
    pid           integer NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
