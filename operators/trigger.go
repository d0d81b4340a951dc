package operators

import (
	"context"
	"encoding/json"
	"fmt"
)

// Trigger runs the waits of one trigger kind (e.g. "time", "pod") in the
// triggerer. An operator that defers declares its triggers (Deferrer); the
// registry hands them to the triggerer, which runs only the kinds it is
// given.
type Trigger interface {
	// Kind is the name a Deferral refers to; stored with the trigger row.
	Kind() string
	// Run waits until the trigger's condition holds and returns the event
	// to resume the task with. It returns ctx's error when ctx ends first
	// (release, cancellation or deadline — the triggerer tells them apart
	// and writes the timeout event itself).
	Run(ctx context.Context, args json.RawMessage) (Event, error)
}

// TriggerCanceller is implemented by triggers that must clean up when their
// task is killed or cleared while deferred (e.g. delete the pod).
type TriggerCanceller interface {
	Cancel(ctx context.Context, args json.RawMessage) error
}

// Deferrer is an operator that hands tasks to triggers and resumes them with
// the triggers' events.
type Deferrer interface {
	Operator
	Resumer
	// Triggers are the trigger kinds the operator defers to. Operators that
	// share a kind return the same trigger type.
	Triggers() []Trigger
}

// EventStatus is how a trigger's wait ended. Every resume step handles
// every status (EventStatuses lists them).
type EventStatus string

const (
	// EventSuccess: the awaited condition holds (the time came, the pod's
	// base container exited 0).
	EventSuccess EventStatus = "success"
	// EventFailed: the awaited work ended and failed (the base container
	// exited non-zero).
	EventFailed EventStatus = "failed"
	// EventError: the wait cannot end well (the pod was deleted or cannot
	// start, the trigger's arguments are bad, the cluster is unreachable,
	// the trigger panicked, the event could not be read).
	EventError EventStatus = "error"
	// EventTimeout: the trigger's deadline (execution_timeout, or the
	// operator's own) passed before the condition held. The task is timed
	// out: its resume step stops what it started (e.g. deletes the pod).
	EventTimeout EventStatus = "timeout"
	// EventProgress: the awaited work goes on, and the trigger asks for its
	// task to be resumed for a periodic step (a deferred pod's logs copied
	// so far, Airflow's logging_interval), after which the task defers
	// again. Kinds that never send it treat it as an error.
	EventProgress EventStatus = "progress"
)

// EventStatuses are all statuses, for resume steps' exhaustive tests.
func EventStatuses() []EventStatus {
	return []EventStatus{EventSuccess, EventFailed, EventError, EventTimeout, EventProgress}
}

func (s EventStatus) valid() bool {
	for _, v := range EventStatuses() {
		if s == v {
			return true
		}
	}
	return false
}

// Event is what a trigger's wait ended with; the worker resumes the task
// with it. Detail is the trigger kind's own payload (e.g. the pod's exit
// code), read only by the operator that owns the kind.
type Event struct {
	Status  EventStatus     `json:"status"`
	Message string          `json:"message,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// ErrorEvent is the event of a wait that could not end well.
func ErrorEvent(format string, args ...any) Event {
	return Event{Status: EventError, Message: fmt.Sprintf(format, args...)}
}

// DecodeEvent reads a stored event. An event that is not JSON or has an
// unknown status is an error, which the worker resumes as an EventError so
// that the operator still cleans up.
func DecodeEvent(raw []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return Event{}, fmt.Errorf("trigger event %q: %w", raw, err)
	}
	if !ev.Status.valid() {
		return Event{}, fmt.Errorf("trigger event %q: unknown status %q", raw, ev.Status)
	}
	return ev, nil
}
