// Package bash runs a task's bash_command with bash, in its own process
// group, streaming its output into the task log. Its last stdout line is the
// task's XCom return_value (do_xcom_push, default true, as Airflow).
//
// The command reaches bash through a pipe (bash /dev/fd/3), never on the
// command line, so other users cannot read it in ps. bash leads the task's
// process group and kills it when the process that started it dies (see
// killGroupOnParentDeath). The task sees the daemon's environment without its
// credentials (see TaskEnviron).
package bash

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

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
			{Name: "output_processor", Kind: dag.KindString, Check: checkOutputProcessor},
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

	script, scriptWriter, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", tc.Task.ID, err)
	}
	cmd := exec.Command("bash", "/dev/fd/3")
	cmd.Env = env
	cmd.Dir = asString(opts["cwd"])
	cmd.ExtraFiles = []*os.File{script} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: parentDeathSignal}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	tail := &tailLines{max: lastLines}
	err = cmd.Start()
	script.Close()
	if err != nil {
		scriptWriter.Close()
		return nil, fmt.Errorf("task %s: start bash: %w", tc.Task.ID, err)
	}
	go func() {
		// bash reads the script as it runs it: write it all, then close so
		// bash sees its end. A command that exits early closes the pipe.
		_, _ = io.WriteString(scriptWriter, killGroupOnParentDeath+command)
		scriptWriter.Close()
	}()
	tc.Log.Printf("running bash_command (%d bytes, process group %d)", len(command), cmd.Process.Pid)
	if signal.Ignored(parentDeathSignal) {
		tc.Log.Printf("warning: this process ignores %s, so should it crash, the task's background processes may outlive it", parentDeathSignal)
	}

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
		var value any = lastOut
		if opts["output_processor"] == outputJSON {
			if !json.Valid([]byte(lastOut)) {
				return nil, fmt.Errorf("task %s: output_processor: json: the last line the command printed is not JSON: %s",
					tc.Task.ID, excerpt(lastOut))
			}
			value = json.RawMessage(lastOut)
		}
		res.XCom = map[string]any{xcomstore.ReturnValue: value}
	}
	return res, nil
}

// outputJSON is output_processor: json (Airflow's parameter name): the
// XCom is the last line parsed as JSON instead of the text.
const outputJSON = "json"

func checkOutputProcessor(n *yaml.Node) []*dag.Error {
	if n.Kind == yaml.ScalarNode && (n.Value == outputJSON || n.Value == "text") {
		return nil
	}
	return []*dag.Error{{Line: n.Line, Column: n.Column,
		Msg: fmt.Sprintf("output_processor: want json (push the last line parsed as JSON) or text (the default), got %q", n.Value)}}
}

// excerpt is the start of a long line, for error messages.
func excerpt(s string) string {
	if r := []rune(s); len(r) > 80 {
		return fmt.Sprintf("%q…", string(r[:80]))
	}
	return fmt.Sprintf("%q", s)
}

// killGroupOnParentDeath precedes the task's command: bash leads the task's
// process group and gets parentDeathSignal when the process that started it
// dies (PR_SET_PDEATHSIG); it then kills the whole group. bash runs a trap
// once its current foreground command returns (at once while it waits on
// `wait`), so after a crash no further command of the task starts and its
// background processes die with it. One bash process, no supervisor: a
// second shell per task cost 20 ms of CPU, which tripled `podflow bench`.
// It shares the command's first line so bash's messages keep their line
// numbers.
const killGroupOnParentDeath = "trap 'kill -KILL 0' USR2; "

// parentDeathSignal is SIGUSR2, not SIGHUP: a daemon started with nohup (or
// by a supervisor that ignores SIGHUP) passes SIGHUP on ignored, and a
// shell cannot trap a signal ignored on entry, so a crash left the task's
// processes running.
const parentDeathSignal = syscall.SIGUSR2

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
		env = TaskEnviron(os.Environ(), os.Getenv(PassEnvVar))
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

// PassEnvVar names the daemon's environment variable listing (comma
// separated) the variables a bash task inherits even though TaskEnviron
// would withhold them, e.g. PODFLOW_BASH_PASS_ENV=PGHOST,PGUSER.
const PassEnvVar = "PODFLOW_BASH_PASS_ENV"

// TaskEnviron is the part of the daemon's environment a bash task
// inherits: everything but the daemon's own credentials and settings —
// DATABASE_URL, PODFLOW_* (connections, variables, config), libpq's PG*
// and KUBECONFIG — unless passList names them.
func TaskEnviron(environ []string, passList string) []string {
	pass := map[string]bool{}
	for _, name := range strings.Split(passList, ",") {
		if name = strings.TrimSpace(name); name != "" {
			pass[name] = true
		}
	}
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if daemonOnly(name) && !pass[name] {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func daemonOnly(name string) bool {
	return name == "DATABASE_URL" || name == "KUBECONFIG" ||
		strings.HasPrefix(name, "PODFLOW_") || strings.HasPrefix(name, "PG")
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
