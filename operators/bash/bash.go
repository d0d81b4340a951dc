// Package bash runs a task's bash_command with `bash -c`, in its own process
// group, streaming its output into the task log. Its last stdout line is the
// task's XCom return_value (do_xcom_push, default true, as Airflow).
package bash

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
	"github.com/podflow/podflow/xcomstore"
)

// Operator is the bash operator.
type Operator struct {
	// KillGrace is how long a cancelled command gets between SIGTERM and
	// SIGKILL of its process group.
	KillGrace time.Duration
}

// New returns the bash operator.
func New() *Operator { return &Operator{KillGrace: 5 * time.Second} }

// Schema declares the bash options.
func (*Operator) Schema() *dag.OperatorSchema {
	return &dag.OperatorSchema{
		Name: "bash",
		Options: []dag.Option{
			{Name: "bash_command", Kind: dag.KindString, Required: true, Templated: true},
			{Name: "env", Kind: dag.KindStringMap, Templated: true},
			{Name: "append_env", Kind: dag.KindBool},
			{Name: "cwd", Kind: dag.KindString},
			{Name: "skip_on_exit_code", Kind: dag.KindIntList},
			{Name: "do_xcom_push", Kind: dag.KindBool},
			{Name: "output_encoding", Kind: dag.KindString},
		},
	}
}

// lastLines is how many trailing output lines a failure's error quotes.
const lastLines = 5

// Execute runs the command.
func (o *Operator) Execute(ctx context.Context, tc *operators.TaskContext) (*operators.Result, error) {
	opts := tc.Task.Options
	command, err := operators.Render(ctx, tc, "bash_command", asString(opts["bash_command"]))
	if err != nil {
		return nil, err
	}
	env, err := o.environment(ctx, tc)
	if err != nil {
		return nil, err
	}
	if enc := asString(opts["output_encoding"]); enc != "" && !strings.EqualFold(enc, "utf-8") && !strings.EqualFold(enc, "utf8") {
		return nil, fmt.Errorf("task %s: output_encoding %q is not supported (only utf-8)", tc.Task.ID, enc)
	}

	cmd := exec.Command("bash", "-c", command)
	cmd.Env = env
	cmd.Dir = asString(opts["cwd"])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	tail := &tailLines{max: lastLines}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("task %s: start bash: %w", tc.Task.ID, err)
	}
	tc.Log.Printf("running: bash -c %q (pid %d)", command, cmd.Process.Pid)

	var wg sync.WaitGroup
	var lastOut string
	wg.Add(2)
	go func() { defer wg.Done(); lastOut = pump(stdout, "stdout", tc.Log, tail) }()
	go func() { defer wg.Done(); pump(stderr, "stderr", tc.Log, tail) }()

	waitDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			o.killGroup(cmd.Process.Pid, waitDone)
		case <-waitDone:
		}
	}()
	wg.Wait()
	werr := cmd.Wait()
	close(waitDone)
	// Children left in the background are part of the task: end them too.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)

	if ctx.Err() != nil {
		return nil, fmt.Errorf("task %s: bash command stopped: %w", tc.Task.ID, context.Cause(ctx))
	}
	if werr != nil {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) {
			return nil, fmt.Errorf("task %s: bash: %w", tc.Task.ID, werr)
		}
		code := ee.ExitCode()
		if skipCode(opts["skip_on_exit_code"], code) {
			return nil, &operators.SkipError{Reason: fmt.Sprintf("bash command exited with code %d (skip_on_exit_code)", code)}
		}
		if code < 0 {
			return nil, fmt.Errorf("task %s: bash command killed by %v%s", tc.Task.ID, ee.ProcessState, tail.quote())
		}
		return nil, fmt.Errorf("task %s: bash command failed with exit code %d%s", tc.Task.ID, code, tail.quote())
	}
	res := &operators.Result{}
	if push, ok := opts["do_xcom_push"].(bool); (!ok || push) && lastOut != "" {
		res.XCom = map[string]any{xcomstore.ReturnValue: lastOut}
	}
	return res, nil
}

// killGroup sends SIGTERM to the process group, then SIGKILL after the grace
// period unless the command has exited.
func (o *Operator) killGroup(pid int, done <-chan struct{}) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(o.KillGrace):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

func (o *Operator) environment(ctx context.Context, tc *operators.TaskContext) ([]string, error) {
	ctxVars := []string{
		"PODFLOW_CTX_DAG_ID=" + tc.DAG.ID,
		"PODFLOW_CTX_TASK_ID=" + tc.Task.ID,
		"PODFLOW_CTX_RUN_ID=" + tc.RunID,
		"PODFLOW_CTX_TRY_NUMBER=" + strconv.Itoa(tc.TryNumber),
	}
	if tc.Template != nil {
		ctxVars = append(ctxVars, "PODFLOW_CTX_LOGICAL_DATE="+tc.Template.LogicalDate.Format(time.RFC3339))
	}
	raw, hasEnv := tc.Task.Options["env"].(map[string]any)
	appendEnv, _ := tc.Task.Options["append_env"].(bool)
	var env []string
	if !hasEnv || appendEnv {
		env = os.Environ()
	}
	if hasEnv {
		rendered, err := operators.RenderValue(ctx, tc, "env", raw)
		if err != nil {
			return nil, err
		}
		for k, v := range rendered.(map[string]any) {
			env = append(env, k+"="+asString(v))
		}
	}
	return append(env, ctxVars...), nil
}

// pump copies a stream into the log line by line and returns the last line.
func pump(r io.Reader, source string, log operators.Log, tail *tailLines) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	var last string
	for sc.Scan() {
		line := sc.Text()
		log.Line(source, line)
		tail.add(line)
		if line != "" {
			last = line
		}
	}
	_, _ = io.Copy(io.Discard, r) // a line over the buffer: drain so the command never blocks
	return last
}

type tailLines struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tailLines) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[1:]
	}
}

func (t *tailLines) quote() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return ""
	}
	return "; last output:\n  " + strings.Join(t.lines, "\n  ")
}

func skipCode(v any, code int) bool {
	switch x := v.(type) {
	case nil:
		return code == 99
	case int:
		return code == x
	case []any:
		for _, e := range x {
			if n, ok := e.(int); ok && n == code {
				return true
			}
		}
	}
	return false
}

func asString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}
