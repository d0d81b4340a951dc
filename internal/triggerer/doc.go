// Package triggerer runs deferred tasks' triggers. A triggerer claims
// triggers (unowned, or owned by a triggerer whose heartbeat expired) up to
// its capacity, runs each with the operators.Trigger of its kind (it runs
// only the kinds it is given: the operator registry's Triggers), and writes
// the event back: the task goes deferred → scheduled, only if still
// deferred, and a worker resumes it.
//
//	worker: running ──defer──▶ deferred + trigger row ──NOTIFY──▶ triggerer
//	triggerer: claim (SKIP LOCKED) ─▶ Trigger.Run ─▶ event ─▶ FireTrigger
//	                                                   (deferred → scheduled)
//	scheduler: scheduled → queued ─▶ worker: operator.Resume(event)
//
// Errors and deadlines are events too (operators.EventError, EventTimeout),
// so the operator's resume step cleans up (e.g. deletes the pod) and the
// task's retries apply as for any failure. Any number of triggerers may
// run; a trigger is owned by one at a time.
package triggerer
