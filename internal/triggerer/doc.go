// Package triggerer runs deferred tasks' triggers. A triggerer claims
// triggers (unowned, or owned by a triggerer whose heartbeat expired) up to
// its capacity, runs each with the operators.Trigger of its kind (it runs
// only the kinds it is given: the operator registry's Triggers), and writes
// the event back: in one transaction the task goes deferred → queued, only
// if still deferred, and the workers are notified (ChannelTaskQueued), so a
// worker resumes it without waiting for a scheduling loop tick.
//
//	worker: running ──defer──▶ deferred + trigger row ──NOTIFY──▶ triggerer
//	triggerer: claim (SKIP LOCKED) ─▶ Trigger.Run ─▶ event ─▶ FireTriggers
//	                                         (the events that arrive together, in one transaction)
//	                                         (deferred → queued, NOTIFY task_queued)
//	worker: claim ─▶ operator.Resume(event)
//
// Errors and deadlines are events too (operators.EventError, EventTimeout),
// so the operator's resume step cleans up (e.g. deletes the pod) and the
// task's retries apply as for any failure. Any number of triggerers may
// run; a trigger is owned by one at a time.
package triggerer
