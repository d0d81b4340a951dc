-- A DAG whose file was removed from the DAGs folder (#21's "noticed"): the
-- scheduler that syncs that folder marks it inactive, and inactive DAGs get
-- no scheduled or asset-triggered runs; their history stays. Saving the DAG
-- again (its file back, or the dag_id defined in another file) makes it
-- active. As Airflow's dag.is_active.
ALTER TABLE dags ADD COLUMN is_active boolean NOT NULL DEFAULT true;
