package flowtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Log is a task log that keeps its lines, for operator tests: lines from
// podflow read "podflow: …", a source's lines "[source] …". WaitFor wakes
// on each new line.
type Log struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

// NewLog returns an empty log.
func NewLog() *Log { return &Log{added: make(chan struct{}, 1)} }

// Printf records a line from podflow.
func (l *Log) Printf(format string, args ...any) { l.add("podflow: " + fmt.Sprintf(format, args...)) }

// Line records a line of the task's own output.
func (l *Log) Line(source, text string) { l.add("[" + source + "] " + text) }

func (l *Log) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
}

// String is the whole log.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// SourceLines are the lines one source wrote.
func (l *Log) SourceLines(source string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if rest, ok := strings.CutPrefix(line, "["+source+"] "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// WaitFor waits until a line contains s.
func (l *Log) WaitFor(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.Contains(l.String(), s) {
		select {
		case <-l.added:
		case <-deadline:
			t.Fatalf("no log line with %q in %s; log:\n%s", s, timeout, l.String())
		}
	}
}
