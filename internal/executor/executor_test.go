package executor_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/executor"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/operators/bash"
)

// probe is an operator that does what the test's DAG says by its task id
// and keeps the task context it was given.
type probe struct{ got chan *operators.TaskContext }

func (*probe) Schema() *dag.OperatorSchema { return &dag.OperatorSchema{Name: "probe"} }

func (p *probe) Execute(ctx context.Context, tc *operators.TaskContext) (*operators.Result, error) {
	p.got <- tc
	switch tc.Task.ID {
	case "panics":
		panic("probe panics")
	case "blocks":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return &operators.Result{XCom: map[string]any{"return_value": tc.Template.Conf["n"]}}, nil
}

const dagYAML = `dag_id: d
params: {n: 1}
tasks:
  - {task_id: echo, operator: bash, bash_command: 'echo "n={{ params.n }}"'}
  - {task_id: fails, operator: bash, bash_command: 'exit 3', retries: 1}
  - {task_id: conf, operator: probe}
  - {task_id: panics, operator: probe, retries: 3}
  - {task_id: blocks, operator: probe, execution_timeout: 300ms}
`

// setup is an executor over bash and probe that loads dagYAML for any hash.
func setup(t *testing.T) (*executor.Executor, *probe) {
	t.Helper()
	p := &probe{got: make(chan *operators.TaskContext, 10)}
	ops := operators.NewRegistry(bash.New(), p)
	d, errs := dag.NewParser(ops.Schemas()).ParseBytes("d.yaml", []byte(dagYAML))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return &executor.Executor{Operators: ops, LoadDAG: func(context.Context, string) (*dag.DAG, error) { return d, nil }}, p
}

func try(taskID string, log *flowtest.Log) executor.Try {
	return executor.Try{DagID: "d", TaskID: taskID, Hash: "h", MaxTries: 1, Log: log,
		Run: operators.TaskRun{RunID: flowtest.TestRunID, TryNumber: 1}}
}

// Execute loads the try's DAG version, builds its task context (params
// merged with the run's conf), runs the operator with execution_timeout
// on its context, and maps how it returned to the outcome; its first log
// line says what starts.
func TestExecute(t *testing.T) {
	t.Parallel()
	e, p := setup(t)
	ctx := context.Background()

	log := flowtest.NewLog()
	out := e.Execute(ctx, try("echo", log))
	if out.State != runstate.Success || !strings.Contains(log.String(), "[stdout] n=1") {
		t.Errorf("echo: %+v, log:\n%s", out, log)
	}
	if first := strings.SplitN(log.String(), "\n", 2)[0]; first != "podflow: starting d.echo run "+flowtest.TestRunID+" (try 1 of 2, DAG version h)" {
		t.Errorf("first log line %q", first)
	}

	out = e.Execute(ctx, try("fails", flowtest.NewLog()))
	if out.State != runstate.UpForRetry || !strings.Contains(out.Error, "exit code 3") || out.RetryAt.IsZero() {
		t.Errorf("fails, try 1 of 2: %+v, want up_for_retry with the exit code", out)
	}

	tr := try("conf", flowtest.NewLog())
	tr.RawConf = []byte(`{"n": 7}`)
	out = e.Execute(ctx, tr)
	tc := <-p.got
	if out.State != runstate.Success || string(out.XCom["return_value"]) != "7" {
		t.Errorf("conf: %+v, want success with the conf's n as XCom", out)
	}
	if tc.RunID != flowtest.TestRunID || fmt.Sprint(tc.Template.Params["n"]) != "7" {
		t.Errorf("task context: run %q, params %v; want the run's id and conf over params", tc.RunID, tc.Template.Params)
	}
	tr.RawConf, tr.MaxTries = []byte(`{"n": `), 0
	if out = e.Execute(ctx, tr); out.State != runstate.Failed || !strings.Contains(out.Error, "run conf") {
		t.Errorf("bad conf: %+v, want failed naming the run conf", out)
	}

	// A panicking operator fails the try without retries: it never reached
	// a known state.
	if out = e.Execute(ctx, try("panics", flowtest.NewLog())); out.State != runstate.Failed || !strings.Contains(out.Error, "operator panicked: probe panics") {
		t.Errorf("panics: %+v", out)
	}
	<-p.got

	tr = try("blocks", flowtest.NewLog())
	tr.MaxTries = 0
	start := time.Now()
	out = e.Execute(ctx, tr)
	tc = <-p.got
	if out.State != runstate.Failed || !strings.Contains(out.Error, "execution_timeout 300ms exceeded") {
		t.Errorf("blocks: %+v, want failed by execution_timeout", out)
	}
	if took := time.Since(start); took > 5*time.Second || tc.Deadline.IsZero() {
		t.Errorf("blocks ended after %s with deadline %v", took, tc.Deadline)
	}
	// Resumed after a deferral, the timeout counts from the try's start.
	long := time.Now().Add(-time.Hour)
	tr.Started = &long
	start = time.Now()
	if out = e.Execute(ctx, tr); out.State != runstate.Failed || time.Since(start) > time.Second {
		t.Errorf("blocks started an hour ago: %+v after %s, want failed at once", out, time.Since(start))
	}
	<-p.got

	// A task missing from its DAG version, or resumed on an operator that
	// cannot resume, fails with what went wrong.
	if out = e.Execute(ctx, try("gone", flowtest.NewLog())); out.State != runstate.Failed || !strings.Contains(out.Error, "task gone is not in DAG d version h") {
		t.Errorf("gone: %+v", out)
	}
	tr = try("echo", flowtest.NewLog())
	tr.MaxTries, tr.NextMethod, tr.NextEvent = 0, "resume", []byte(`{"status":"success"}`)
	if out = e.Execute(ctx, tr); out.State != runstate.Failed || !strings.Contains(out.Error, "operator bash cannot resume") {
		t.Errorf("resume on bash: %+v", out)
	}
}

// A try stopped by its scheduler's shutdown did not fail: it is retried,
// with no retries left, and its error says why it stopped.
func TestExecuteCancelledWithCause(t *testing.T) {
	t.Parallel()
	e, p := setup(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan executor.Outcome, 1)
	tr := try("blocks", flowtest.NewLog())
	tr.MaxTries = 0
	go func() { done <- e.Execute(ctx, tr) }()
	<-p.got
	cancel(executor.ErrShutdown)
	out := <-done
	if !strings.Contains(out.Error, executor.ErrShutdown.Error()) {
		t.Errorf("outcome %+v does not name the shutdown", out)
	}
	if out.State != runstate.UpForRetry {
		t.Errorf("a shutdown ended the try %s, want up_for_retry", out.State)
	}
}
