-- Dynamic task mapping (#14). A mapped task's run starts with one
-- placeholder row (map_index -1); when its upstreams are done the placeholder
-- becomes map_index 0 and rows 1…n-1 are inserted, each carrying the options
-- it was expanded with. The throttles of a task are copied onto its rows so
-- the claim can hold them without knowing the DAG.
ALTER TABLE task_instances
    ADD COLUMN mapped_args         jsonb,     -- the instance's expanded options (an object)
    ADD COLUMN rendered_map_index  text,      -- map_index_template's rendering, for display
    ADD COLUMN max_active_per_dag  integer,   -- max_active_tis_per_dag of its task
    ADD COLUMN max_active_per_run  integer;   -- max_active_tis_per_dagrun of its task

-- The claim ranks the queued instances of throttled tasks (few rows; this
-- index keeps the common case, no throttle at all, free).
CREATE INDEX task_instances_queued_throttled ON task_instances (dag_id, task_id)
    WHERE state = 'queued' AND (max_active_per_dag IS NOT NULL OR max_active_per_run IS NOT NULL);
