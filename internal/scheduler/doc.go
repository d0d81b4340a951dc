// Package scheduler is podflow's engine: it syncs the DAGs folder into the
// database, creates DAG runs from schedules, decides which task instances are
// ready (package runstate), and runs a pool of workers that claim queued task
// instances and hand each try to package executor.
//
// Several schedulers may run against one database. Correctness comes from
// row locks and guarded transitions, never from "only one is running":
//
//	loop (every second, or woken by NOTIFY)          workers (N slots)
//	  sync DAG files ──▶ dags, dag_versions             claim: FOR UPDATE SKIP LOCKED
//	  create scheduled runs (ON CONFLICT DO NOTHING)      under a claim lock (pools,
//	  start queued runs  (dag row lock, max_active_runs)  max_active_tasks)
//	  sweep running runs (run row lock, SKIP LOCKED)    execute operator
//	  queue due retries (and stray scheduled rows)      completer: one transaction per
//	  zombies, dagrun_timeout                             batch: finish + decide the run
//	                                                      (run row lock) + NOTIFY
//
// The completer decides a run's next tasks in the same transaction that
// finishes a task, so a downstream task is queued — and a worker woken —
// milliseconds after its upstream succeeds, without waiting for the loop.
package scheduler
