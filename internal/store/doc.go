// Package store holds every SQL statement of podflow's metadata database:
// DAGs and their versions, runs, task instances, XComs, task logs,
// triggers, heartbeats and the figures /metrics reads. No other package's
// code writes SQL against these tables (a few system tests still read or
// age rows directly); a new statement gets a function here, named for what
// it does. Schema changes are in migrations/, LISTEN connections in the
// daemons.
//
// # Calling it
//
// Methods live on Q, which runs either on the pool (Store embeds one) or in
// a transaction (Store.InTx). Notifications (Notify and the Channel…
// constants) sent inside a transaction are delivered at commit, so a worker
// woken by "task queued" always finds the row.
//
// # Transitions
//
// Each state change is one statement guarded by the state it expects
// (UPDATE … WHERE state = $expected): a late or duplicate actor — a second
// scheduler, a zombie's worker reporting after it was failed, a trigger event
// delivered twice — matches no row and changes nothing. Functions that make a
// transition report whether it applied (a bool, the ids that moved, or a
// count), never an error for "someone else got there first".
//
// Runs (dag_runs):
//
//	CreateRun            (new) → queued        once per (dag_id, run_id)
//	StartRun             queued → running
//	FinishRun            running → success | failed
//	FailForRunTimeout    running → failed, with its tasks (below)
//	ReopenRun            success | failed → running   (a clear)
//
// Task instances (task_instances):
//
//	InsertTaskInstances  (new) → none, or queued when nothing to wait for
//	QueueReady           none → queued              trigger rule met
//	MarkUpstreamFailed   none → upstream_failed     trigger rule can't be met
//	MarkSkipped          none → skipped             trigger rule says skip
//	SkipWithSuccess      none → skipped             a branch / short_circuit's choice, in
//	                                                the transaction of its success (FinishTasks)
//	ClaimTasks           queued → running           try_number+1, owner set
//	FinishTasks          running → success | failed | skipped | up_for_retry | deferred
//	                     (guarded by state, try number and owner)
//	QueueDueRetries      up_for_retry → queued      once next_retry_at passed
//	FireTrigger          deferred → queued          with the trigger's event; wakes workers
//	QueueResumed         scheduled → queued         safety net for rows an older podflow left scheduled
//	FailForRunTimeout    running | deferred → failed;
//	                     none | scheduled | queued | up_for_retry → skipped
//	ClearTasks           any → none                 XComs and triggers deleted
//	ClearMapIndex        any → none                 one mapped instance, its XComs and trigger
//
// A mapped task (dynamic task mapping) starts as one placeholder row with
// map_index -1; when it is ready:
//
//	ExpandTask           placeholder none → instance 0 queued, instances 1…n-1 inserted queued
//	                     (one statement; each row carries its expanded options, mapped_args)
//	MarkSkipped          placeholder none → skipped        (the list is empty)
//	FailUnexpanded       placeholder none → failed         (no list, or longer than max_map_length)
//
// TaskStates sums a mapped task's instances up in one state for the
// trigger rules; the claim holds max_active_tis_per_dag(run) from the
// throttle columns copied onto every row.
//
// A task instance's life, as runstate.Decide and the workers drive it:
//
//	none ─QueueReady─▶ queued ─ClaimTasks─▶ running ─FinishTasks─▶ success | failed | skipped
//	 │                  ▲  ▲                 │  │
//	 │                  │  │                 │  └─FinishTasks─▶ up_for_retry ─┐
//	 │                  │  └─────────────────│───── QueueDueRetries ──────────┘
//	 │                  │                    └─FinishTasks─▶ deferred ─┐
//	 │                  └──────────────────────── FireTrigger ─────────┘
//	 ├─MarkUpstreamFailed─▶ upstream_failed
//	 └─MarkSkipped────────▶ skipped
//
// ClearTasks puts any task instance back to none; FailForRunTimeout fails
// running and deferred ones and skips waiting ones.
//
// Every transition appends "state,try,unix-µs;" to the row's transitions
// in the same statement (StateHistory reads it, after the jsonb history of
// rows written before migration 0010). The transitions that end or start a
// try, or finish a run, also write the alerts their DAG version's callbacks
// ask for in that statement (alerts.go: taskAlerts, runAlerts), so an
// alert exists exactly when its state change committed. A try's XComs are written in the
// transaction of its success (FinishTasks) and deleted when it is cleared;
// a deferral's trigger row is written with the deferral.
//
// # Claiming
//
// ClaimTasks is River's pattern with podflow's limits. Inside one
// transaction it takes a transaction-level advisory lock (claimLockKey), so
// claims from any number of schedulers run one at a time and pool slots and
// each run's max_active_tasks hold; it then reads up to 2n queued task
// instances, highest priority_weight first, then oldest queued_at, counts
// what runs now per pool and DAG, picks those that fit, locks those of them
// still queued with FOR UPDATE SKIP LOCKED (a row another transaction holds
// is skipped, not waited for) and moves them queued → running for the
// owner. A task instance resuming after a deferral keeps its try number and
// start time. Triggers are claimed the same way (ClaimTriggers), without
// the advisory lock since they have no limits.
//
// # Serialisation
//
// Row locks, not "only one scheduler": LockDag serialises run creation and
// starting per DAG, and LockRun serialises decisions about one run, so two
// task instances of a run finishing at once never decide from stale states.
package store
