package templating

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Hostile templates that once killed the process: a stack overflow or
// running out of memory is a fatal error in Go, which no recover() catches.
// Each runs in a child process (this test binary, re-executed) under a
// memory limit, so that on a regression the child dies, not the test run;
// the parent asserts that the child ended cleanly with the expected error.

const childModeEnv = "PODFLOW_TEMPLATING_HOSTILE"

type hostileCase struct {
	name string
	src  string
	conf map[string]any
	want string // in the error of Compile or Render
}

func hostileCases() []hostileCase {
	deep := any("x")
	for range 9_000 {
		deep = []any{deep}
	}
	return []hostileCase{
		{name: "nested parentheses", src: "{{ " + strings.Repeat("(", 100_000) + "1" + strings.Repeat(")", 100_000) + " }}",
			want: "nested deeper than 64 levels at line 1, column 68"},
		{name: "nested brackets", src: "echo\n{{ " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + " }}",
			want: "nested deeper than 64 levels at line 2, column 68"},
		{name: "nested if blocks", src: strings.Repeat("{% if true %}", 10_000) + strings.Repeat("{% endif %}", 10_000),
			want: "blocks nested deeper than 64 levels"},
		{name: "long operator chain", src: "{{ " + strings.Repeat("1 + ", 60_000) + "1 }}",
			want: "more than 1000 operators in one tag"},
		{name: "doubling with ~", src: "{% set a = 'x' * 1000000 %}" + strings.Repeat("{% set a = a ~ a %}", 14) + "{{ a | length }}",
			want: "exceeds the render budget"},
		{name: "doubling with +", src: "{% set a = 'x' * 1000000 %}" + strings.Repeat("{% set a = a + a %}", 14) + "{{ a | length }}",
			want: "exceeds the render budget"},
		{name: "list concatenation in a loop", src: "{% set l = range(10000) | list %}" + strings.Repeat("{% set l = l + l %}", 20) + "{{ l | length }}",
			want: "list concatenation l + l exceeds the render budget"},
		{name: "format padding", src: "{{ ('{0:9999}' * 130000).format('a') }}",
			want: "exceeds the render budget"},
		{name: "pprint of a deep conf", src: "{{ dag_run.conf | pprint }}", conf: map[string]any{"v": deep},
			want: "filter pprint: value nested deeper than 100 levels"},
		{name: "huge repetition", src: "{{ 'a' * 10**9 }}",
			want: "string repetition 'a' * 10 ** 9 exceeds the render budget"},
	}
}

func TestHostileTemplatesInChildProcess(t *testing.T) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		runHostileChild(mode)
		return
	}
	t.Parallel()
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHostileTemplatesInChildProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), childModeEnv+"="+tc.name)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child for %q died (%v) after %s:\n%s", tc.name, err, time.Since(start), tail(string(out), 1500))
			}
			if !strings.Contains(string(out), "CHILD-ERROR: ") {
				t.Fatalf("child for %q gave no error:\n%s", tc.name, tail(string(out), 1500))
			}
			if !strings.Contains(string(out), tc.want) {
				t.Fatalf("child for %q: error does not contain %q:\n%s", tc.name, tc.want, tail(string(out), 1500))
			}
		})
	}
}

// runHostileChild compiles and renders one hostile case under a 512 MiB
// address-space limit and a soft heap limit, prints the error and exits 0.
// A crash exits 2 with Go's fatal error on stderr.
func runHostileChild(mode string) {
	lim := &syscall.Rlimit{Cur: 2 << 30, Max: 2 << 30}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, lim); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(3)
	}
	debug.SetMemoryLimit(256 << 20)
	debug.SetMaxStack(256 << 20)
	for _, tc := range hostileCases() {
		if tc.name != mode {
			continue
		}
		err := compileAndRender(tc)
		fmt.Printf("CHILD-ERROR: %v\n", err)
		os.Exit(0)
	}
	fmt.Println("unknown mode", mode)
	os.Exit(4)
}

func compileAndRender(tc hostileCase) error {
	tpl, err := Compile(tc.src)
	if err != nil {
		return err
	}
	conf := tc.conf
	if conf != nil {
		// As the scheduler gets it: decoded from the stored JSON.
		data, err := json.Marshal(conf)
		if err != nil {
			return err
		}
		d := json.NewDecoder(strings.NewReader(string(data)))
		d.UseNumber()
		if err := d.Decode(&conf); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := tpl.Render(ctx, &Context{DagID: "d", TaskID: "t", RunID: "r", Conf: conf})
	if err == nil {
		return fmt.Errorf("no error; rendered %d bytes", len(out))
	}
	return err
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
