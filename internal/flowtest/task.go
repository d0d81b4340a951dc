package flowtest

import (
	"context"
	"sync"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

// TestRunID is the run id of an operator test's task contexts.
const TestRunID = "manual__2026-11-28T09:00:00+00:00"

// Task is an operator test's task: its context (try 1 of run TestRunID),
// the recording log the context writes to, and the external ids the
// operator recorded with SetExternalID.
type Task struct {
	TC  *operators.TaskContext
	Log *Log

	mu  sync.Mutex
	ids []string
}

// NewTask builds the context of task in d (a DAG with only the id "d" when
// d is nil); tests change TC's other fields as they need.
func NewTask(d *dag.DAG, task *dag.Task) *Task {
	if d == nil {
		d = &dag.DAG{ID: "d"}
	}
	k := &Task{Log: NewLog()}
	k.TC = &operators.TaskContext{DAG: d, Task: task, RunID: TestRunID, TryNumber: 1, Log: k.Log,
		SetExternalID: func(_ context.Context, ns, name string) error {
			k.mu.Lock()
			defer k.mu.Unlock()
			k.ids = append(k.ids, ns+"/"+name)
			return nil
		}}
	return k
}

// ExternalIDs are the "namespace/name"s recorded with SetExternalID.
func (k *Task) ExternalIDs() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.ids...)
}
