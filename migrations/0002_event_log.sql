-- The audit log: every change made through the API or the CLI (trigger,
-- clear, mark, pause, user and key changes), who made it, when and from where.
CREATE TABLE event_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,          -- user name, "api-key:NAME", "oidc:SUBJECT", "cli:OSUSER", "anonymous"
    source      text NOT NULL,          -- remote address for the API, "cli@HOSTNAME" for the CLI
    event       text NOT NULL,          -- trigger | clear | mark_run | mark_task | pause | unpause | user_create | …
    dag_id      text,
    run_id      text,
    task_id     text,
    extra       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX event_log_at ON event_log (at DESC, id DESC);
CREATE INDEX event_log_dag ON event_log (dag_id, at DESC) WHERE dag_id IS NOT NULL;
