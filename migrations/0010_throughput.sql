-- Throughput (#18).
--
-- The claim counts the running and deferred instances of throttled tasks
-- (max_active_tis_per_dag / _per_dagrun) among its candidates; without an
-- index that count read the whole table on every claim. Few rows match, so
-- the index costs nothing for unthrottled tasks.
CREATE INDEX task_instances_active_throttled ON task_instances (dag_id, task_id)
    WHERE state IN ('running', 'deferred') AND (max_active_per_dag IS NOT NULL OR max_active_per_run IS NOT NULL);

-- The state history, appended by every transition, as compact text:
-- "state,try,unix-µs;" per transition (about 28 bytes) instead of a jsonb
-- object in a growing jsonb array that each update rebuilt (about 70 bytes
-- each, and a jsonb decode and encode per write). Rows written before this
-- migration keep their jsonb history; StateHistory reads both, the jsonb
-- entries first. Adding a column with a constant default rewrites nothing.
ALTER TABLE task_instances ADD COLUMN transitions text NOT NULL DEFAULT '';
