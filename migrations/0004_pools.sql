-- Pools (slots shared by the tasks that name them) move from podflow.yaml to
-- the database, so the API can manage them. Pools named in podflow.yaml are
-- upserted at scheduler start (the file wins for those names); a task whose
-- pool is in neither has default_pool's semantics (DefaultPoolSlots).
CREATE TABLE pools (
    name         text PRIMARY KEY,
    slots        integer NOT NULL CHECK (slots >= 0),
    description  text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO pools (name, slots, description) VALUES ('default_pool', 128, 'Default pool');

-- DAG tags, for the API's tag filter.
ALTER TABLE dags ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

-- The API's run lists: every DAG's runs newest first, and one DAG's.
CREATE INDEX dag_runs_logical ON dag_runs (logical_date DESC, id DESC);
CREATE INDEX dag_runs_dag_logical_id ON dag_runs (dag_id, logical_date DESC, id DESC);
