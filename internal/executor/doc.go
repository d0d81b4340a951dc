// Package executor executes one try of a task instance: it finds the task
// and its operator, builds the task context once (operators.NewTaskContext),
// applies execution_timeout, calls the operator's Execute — or Resume after a
// deferral — and turns how that call ended into the try's outcome.
//
//	Execute(ctx, Try)
//	  load DAG ─▶ task ─▶ operator ─▶ NewTaskContext ─▶ Execute | Resume
//	                                                        │
//	  Decide(Returned{result, error, cause, try, retries}) ◀┘  (pure)
//	    success (with encoded XComs) | skipped | deferred (trigger, deadline)
//	    | up_for_retry (at now + retry delay) | failed
//
// The scheduler's workers keep the plumbing — claiming, slots, task logs,
// the completer that records outcomes — and call Execute for the rest.
// Decide is a plain function of plain values with a table test; the
// executor never writes to the database.
package executor
