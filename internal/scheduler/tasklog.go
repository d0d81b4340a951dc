package scheduler

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// taskLog buffers one try's log lines. Lines reach the database every
// logFlushInterval while the task runs (for `podflow logs --follow`) and the
// rest in the transaction that finishes the task.
type taskLog struct {
	tiID int64
	try  int
	mask func(string) string // nil: none
	mu   sync.Mutex
	buf  []store.LogLine
	// flushing is held while lines taken by the periodic flush are being
	// written: the try's last lines, which the completer writes, are taken
	// only after that, so they land after them (a task printing fast can
	// have a big flush in flight when it ends).
	flushing sync.Mutex
	// flushed: the periodic flush has written some of the try's lines.
	flushed bool
}

const logFlushInterval = 500 * time.Millisecond

func newTaskLog(tiID int64, try int, mask func(string) string) *taskLog {
	return &taskLog{tiID: tiID, try: try, mask: mask}
}

func (l *taskLog) Printf(format string, args ...any) { l.Line("podflow", fmt.Sprintf(format, args...)) }

func (l *taskLog) Line(source, text string) { l.LineAt(time.Now(), source, text) }

// LineAt keeps a line's own time (operators.TimedLog): a pod's log lines
// carry the time the container wrote them.
func (l *taskLog) LineAt(at time.Time, source, text string) {
	if l.mask != nil {
		text = l.mask(text) // outside the lock: masking is the costly part
	}
	l.mu.Lock()
	l.buf = append(l.buf, store.LogLine{TIID: l.tiID, TryNumber: l.try, At: at, Source: source, Line: text})
	l.mu.Unlock()
}

// outcomeLine is a try's last log line: how it ended and why, so that
// `podflow logs` tells what `podflow tasks` does. skipReason is the
// operator's reason for a skip, if it gave one.
func outcomeLine(out store.Outcome, skipReason string) string {
	switch out.State {
	case runstate.Success:
		return "task succeeded"
	case runstate.Skipped:
		if skipReason != "" {
			return "task skipped: " + skipReason
		}
		return "task skipped"
	case runstate.Deferred:
		line := "task deferred to a " + out.Trigger.Kind + " trigger; the worker slot is free until it fires"
		if !out.Trigger.Deadline.IsZero() {
			line += " (deadline " + out.Trigger.Deadline.UTC().Format(time.RFC3339) + ")"
		}
		return line
	case runstate.UpForRetry:
		return "task failed: " + out.Error + " (up for retry at " + out.RetryAt.UTC().Format(time.RFC3339) + ")"
	default:
		return "task " + out.State + ": " + out.Error
	}
}

// takeLast takes the try's remaining lines once no periodic flush of its
// earlier ones is in flight.
func (l *taskLog) takeLast() (lines []store.LogLine, flushed bool) {
	l.flushing.Lock()
	defer l.flushing.Unlock()
	lines = l.take()
	l.mu.Lock()
	defer l.mu.Unlock()
	return lines, l.flushed
}

func (l *taskLog) take() []store.LogLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf
	l.buf = nil
	return b
}

// flushLogsLoop writes running tasks' buffered lines periodically, all tasks
// in one COPY.
func (s *Scheduler) flushLogsLoop(ctx context.Context) {
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		logs := make([]*taskLog, 0, len(s.running))
		for _, rt := range s.running {
			logs = append(logs, rt.log)
		}
		s.mu.Unlock()
		var lines []store.LogLine
		for _, l := range logs {
			l.flushing.Lock()
			taken := l.take()
			if len(taken) > 0 {
				l.mu.Lock()
				l.flushed = true
				l.mu.Unlock()
			}
			lines = append(lines, taken...)
		}
		if err := s.store.AppendLogs(context.WithoutCancel(ctx), lines); err != nil {
			s.log.Warn("write task logs", "error", err)
		}
		for _, l := range logs {
			l.flushing.Unlock()
		}
	}
}

func sortedKeys(m map[int64]bool) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
