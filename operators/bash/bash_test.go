package bash

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/flowtest"
	"github.com/podflow/podflow/operators"
)

func taskContext(command string, log operators.Log) *operators.TaskContext {
	return &operators.TaskContext{
		DAG:   &dag.DAG{ID: "d"},
		Task:  &dag.Task{ID: "t", Operator: "bash", Options: map[string]any{"bash_command": command}},
		RunID: "manual__x", TryNumber: 1, Log: log,
	}
}

func TestTaskEnvironWithholdsDaemonCredentials(t *testing.T) {
	environ := []string{"PATH=/bin", "HOME=/root", "DATABASE_URL=postgres://u:secret@h/db",
		"PODFLOW_CONN_K8S={\"config\":\"x\"}", "PODFLOW_DATABASE_URL=x", "PGPASSWORD=secret", "PGHOST=db",
		"KUBECONFIG=/root/.kube/config", "AWS_REGION=eu-west-1", "MY_PODFLOW_THING=kept"}
	tests := []struct {
		pass string
		want []string
	}{
		{"", []string{"PATH=/bin", "HOME=/root", "AWS_REGION=eu-west-1", "MY_PODFLOW_THING=kept"}},
		{"PGHOST, KUBECONFIG", []string{"PATH=/bin", "HOME=/root", "PGHOST=db", "KUBECONFIG=/root/.kube/config",
			"AWS_REGION=eu-west-1", "MY_PODFLOW_THING=kept"}},
	}
	for _, tt := range tests {
		got := TaskEnviron(environ, tt.pass)
		if !slices.Equal(got, tt.want) {
			t.Errorf("TaskEnviron(pass %q) = %q, want %q", tt.pass, got, tt.want)
		}
	}
}

func TestTaskDoesNotSeeDatabaseURL(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://podflow:hunter2@127.0.0.1/podflow")
	t.Setenv("PODFLOW_CONN_WAREHOUSE", `{"password":"hunter2"}`)
	t.Setenv("UNRELATED_SETTING", "visible")
	log := flowtest.NewLog()
	if _, err := New().Execute(context.Background(), taskContext("env", log)); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if strings.Contains(out, "hunter2") {
		t.Errorf("the task saw the daemon's credentials:\n%s", out)
	}
	if !strings.Contains(out, "UNRELATED_SETTING=visible") || !strings.Contains(out, "PODFLOW_CTX_TASK_ID=t") {
		t.Errorf("the task lost ordinary or context variables:\n%s", out)
	}
}

// TestCommandNotOnCommandLine: another user reading /proc/*/cmdline (ps)
// must not see the rendered command, which may hold conf values or tokens.
func TestCommandNotOnCommandLine(t *testing.T) {
	const marker = "token-7f3a9c"
	log := flowtest.NewLog()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := New().Execute(ctx, taskContext("secret="+marker+"; echo started; sleep 30", log))
		done <- err
	}()
	log.WaitFor(t, "[stdout] started", 10*time.Second)
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	seenTask := false
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmdline, marker) {
			t.Errorf("%s shows the command: %q", p, cmdline)
		}
		if strings.Contains(cmdline, "/dev/fd/3") {
			seenTask = true
		}
	}
	if !seenTask {
		t.Error("no process runs the task as bash /dev/fd/3")
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("a cancelled task succeeded")
	}
	if strings.Contains(log.String(), marker) {
		t.Errorf("the log quotes the command:\n%s", log.String())
	}
}

func TestScriptFromPipeKeepsStdinAndExitCode(t *testing.T) {
	log := flowtest.NewLog()
	// A long script (more than a pipe's buffer) with a command reading stdin.
	long := strings.Repeat("# padding to pass the pipe buffer\n", 4000)
	_, err := New().Execute(context.Background(), taskContext(long+"read -r x || echo eof; echo done; exit 3", log))
	if err == nil || !strings.Contains(err.Error(), "exit code 3") {
		t.Fatalf("err = %v, want exit code 3", err)
	}
	if !strings.Contains(log.String(), "[stdout] eof") || !strings.Contains(log.String(), "[stdout] done") {
		t.Errorf("log:\n%s", log.String())
	}
}

// TestCrashedParentLeavesNoTaskProcesses kills (SIGKILL) a process running a
// bash task whose command started a background child, and checks that the
// child does not outlive it. The process runs under nohup, as daemons often
// do: with SIGHUP ignored, the kill-group trap once did nothing.
func TestCrashedParentLeavesNoTaskProcesses(t *testing.T) {
	if os.Getenv("BASH_TEST_CHILD") == "1" {
		log := &printLog{}
		_, _ = New().Execute(context.Background(), taskContext("sleep 300 & echo bgpid=$!; wait", log))
		return
	}
	nohup, err := exec.LookPath("nohup")
	if err != nil {
		t.Fatalf("nohup (coreutils) is needed: %v", err)
	}
	cmd := exec.Command(nohup, os.Args[0], "-test.run", "^TestCrashedParentLeavesNoTaskProcesses$")
	cmd.Env = append(os.Environ(), "BASH_TEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	pid := 0
	for sc.Scan() {
		if _, v, ok := strings.Cut(sc.Text(), "bgpid="); ok {
			pid, _ = strconv.Atoi(v)
			break
		}
	}
	if pid == 0 {
		t.Fatal("the child never reported its background process")
	}
	started, _, alive := procStat(pid)
	if !alive {
		t.Fatalf("background process %d is not running", pid)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Gone, dead (waiting for its reaper), or its pid already reused by
		// another process (the suite starts thousands of bash processes).
		st, state, alive := procStat(pid)
		if !alive || state == "Z" || st != started {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("task process %d (state %s) survived its scheduler by 10 s", pid, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procStat reads a process's start time and state from /proc/PID/stat;
// alive is false when there is no such process.
func procStat(pid int) (startTime, state string, alive bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", false
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, starttime field 22.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", "", false
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 20 {
		return "", "", false
	}
	return f[19], f[0], true
}

// printLog writes lines to stdout, for the child process.
type printLog struct{ mu sync.Mutex }

func (l *printLog) Printf(format string, args ...any) {
	l.Line("podflow", fmt.Sprintf(format, args...))
}
func (l *printLog) Line(_, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Println(text)
}

func TestErrorsKeepTheCommandsLineNumbers(t *testing.T) {
	log := flowtest.NewLog()
	_, err := New().Execute(context.Background(), taskContext("true\nno-such-command-xyz", log))
	if err == nil {
		t.Fatal("a missing command succeeded")
	}
	if !strings.Contains(log.String(), "line 2: no-such-command-xyz") {
		t.Errorf("bash's message does not name line 2:\n%s", log.String())
	}
}

func TestOutputProcessorJSON(t *testing.T) {
	run := func(command, processor string) (*operators.Result, error) {
		tc := taskContext(command, flowtest.NewLog())
		if processor != "" {
			tc.Task.Options["output_processor"] = processor
		}
		return New().Execute(context.Background(), tc)
	}
	res, err := run(`echo starting; echo '{"orders": [1, 2], "n": 12345678901234567}'`, "json")
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := res.XCom["return_value"].(json.RawMessage)
	if !ok || string(raw) != `{"orders": [1, 2], "n": 12345678901234567}` {
		t.Fatalf("json XCom = %#v, want the last line as JSON", res.XCom["return_value"])
	}
	res, err = run(`echo '{"a": 1}'`, "")
	if err != nil || res.XCom["return_value"] != `{"a": 1}` {
		t.Fatalf("default XCom = %#v, %v; want the text", res.XCom["return_value"], err)
	}
	if _, err := run(`echo 'done: 3 files'`, "json"); err == nil || !strings.Contains(err.Error(), `not JSON: "done: 3 files"`) {
		t.Fatalf("non-JSON last line: err = %v", err)
	}

	schema := New().Schema()
	for _, o := range schema.Options {
		if o.Name != "output_processor" {
			continue
		}
		if errs := o.Check(&yaml.Node{Kind: yaml.ScalarNode, Value: "yaml", Line: 7, Column: 5}); len(errs) != 1 ||
			!strings.Contains(errs[0].Msg, "want json") || errs[0].Line != 7 {
			t.Fatalf("output_processor: yaml: %v", errs)
		}
		return
	}
	t.Fatal("no output_processor option")
}
