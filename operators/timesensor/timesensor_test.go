package timesensor

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

type log struct{ lines []string }

func (l *log) Printf(format string, args ...any) {
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}
func (l *log) Line(source, text string) { l.lines = append(l.lines, text) }

// Every event status has an outcome: only success is the time reached.
func TestResumeHandlesEveryStatus(t *testing.T) {
	t.Parallel()
	want := map[operators.EventStatus]string{ // "" = success, else the error names it
		operators.EventSuccess:  "",
		operators.EventFailed:   "time trigger failed: m",
		operators.EventError:    "time trigger error: m",
		operators.EventTimeout:  "time trigger timeout: m",
		operators.EventProgress: "time trigger progress: m",
	}
	for _, s := range append(operators.EventStatuses(), "bogus") {
		for _, op := range []operators.Resumer{Delta{}, DateTime{}} {
			tc := &operators.TaskContext{Task: &dag.Task{ID: "w"}, Log: &log{}}
			res, err := op.Resume(context.Background(), tc, "resume", operators.Event{Status: s, Message: "m"})
			w, known := want[s]
			switch {
			case !known && (err == nil || !strings.Contains(err.Error(), `unknown event status "bogus"`)):
				t.Errorf("%T %s: %v, want an unknown-status error", op, s, err)
			case known && w == "" && (err != nil || res == nil):
				t.Errorf("%T %s: %+v, %v; want success", op, s, res, err)
			case known && w != "" && (err == nil || !strings.Contains(err.Error(), w)):
				t.Errorf("%T %s: %v, want error with %q", op, s, err, w)
			}
		}
	}
}

func TestTriggerFiresAtTheMoment(t *testing.T) {
	t.Parallel()
	at := time.Now().Add(200 * time.Millisecond)
	args, _ := json.Marshal(Args{Moment: at})
	ev, err := Trigger{}.Run(context.Background(), args)
	if err != nil || ev.Status != operators.EventSuccess {
		t.Fatalf("Run = %+v, %v; want success", ev, err)
	}
	if early := time.Until(at); early > 0 {
		t.Errorf("fired %s early", early)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	args, _ = json.Marshal(Args{Moment: time.Now().Add(time.Hour)})
	if _, err := (Trigger{}).Run(ctx, args); err != context.DeadlineExceeded {
		t.Errorf("Run past ctx = %v, want ctx's error (the triggerer writes the timeout)", err)
	}
	if _, err := (Trigger{}).Run(context.Background(), json.RawMessage(`"x"`)); err == nil {
		t.Error("bad args accepted")
	}
}
