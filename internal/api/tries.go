package api

import (
	"time"

	"github.com/podflow/podflow/internal/runstate"
	"github.com/podflow/podflow/internal/store"
)

// Try is one try of a task instance, as its state history tells it.
type Try struct {
	Number     int
	State      string
	Start, End *time.Time
}

// Tries reads a task instance's tries from its state history: each try
// from its first entry to its last, started when it went running, ended
// when it reached a state that ends a try. Entries after a try ended that
// still carry its number (a retry or a clear queueing the task again) are
// the next try's prelude and leave it as it ended.
func Tries(history []store.StateChange) []Try {
	var out []Try
	index := map[int]int{}
	for _, h := range history {
		if h.TryNumber < 1 {
			continue
		}
		i, ok := index[h.TryNumber]
		if !ok {
			i = len(out)
			index[h.TryNumber] = i
			out = append(out, Try{Number: h.TryNumber})
		}
		t := &out[i]
		if t.End != nil {
			continue
		}
		t.State = h.State
		at := h.At
		if h.State == "running" && t.Start == nil {
			t.Start = &at
		}
		if tryEnds(h.State) {
			t.End = &at
		}
	}
	return out
}

// tryEnds says whether a state ends a try.
func tryEnds(state string) bool {
	return runstate.Done(state) || state == "up_for_retry" || state == "none"
}

// tryLive says whether try of a task instance may still write log lines.
func tryLive(ti store.TaskInstance, try int) bool {
	if try != ti.TryNumber {
		return false
	}
	switch ti.State {
	case "running", "deferred", "scheduled":
		return true
	case "queued":
		return ti.NextMethod != "" // resuming after a deferral: the same try
	}
	return false
}
