package crossdag

import (
	"context"
	"strings"
	"testing"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

type log struct{ lines []string }

func (l *log) Printf(format string, args ...any) { l.lines = append(l.lines, format) }
func (l *log) Line(source, text string)          { l.lines = append(l.lines, text) }

func TestResumeHandlesEveryStatus(t *testing.T) {
	t.Parallel()
	want := map[operators.EventStatus]string{ // "" = success, else the error names it
		operators.EventSuccess:  "",
		operators.EventFailed:   "one of failed_states",
		operators.EventError:    "dag_state trigger error: m",
		operators.EventTimeout:  "timed out waiting: m",
		operators.EventProgress: "dag_state trigger progress: m",
		"bogus":                 `unknown event status "bogus"`,
	}
	for status, w := range want {
		for _, op := range []operators.Resumer{&ExternalTaskSensor{}, &TriggerDagRun{}} {
			tc := &operators.TaskContext{Task: &dag.Task{ID: "w", Options: map[string]any{}}, Log: &log{}}
			res, err := op.Resume(context.Background(), tc, "resume", operators.Event{Status: status, Message: "m"})
			switch {
			case w == "" && (err != nil || res == nil):
				t.Errorf("%T %s: %v, want success", op, status, err)
			case w != "" && (err == nil || !strings.Contains(err.Error(), w)):
				t.Errorf("%T %s: %v, want an error with %q", op, status, err, w)
			}
		}
	}
	tc := &operators.TaskContext{Task: &dag.Task{ID: "w", Options: map[string]any{"soft_fail": true}}, Log: &log{}}
	if _, err := (&ExternalTaskSensor{}).Resume(context.Background(), tc, "resume", operators.Event{Status: operators.EventTimeout}); !operators.IsSkip(err) {
		t.Errorf("soft_fail timeout: %v, want a skip", err)
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	a := Args{Allowed: []string{"success"}, Failed: []string{"failed", "upstream_failed"}}
	for state, want := range map[string]operators.EventStatus{
		"": "", "running": "", "queued": "", "skipped": "",
		"success": operators.EventSuccess, "failed": operators.EventFailed, "upstream_failed": operators.EventFailed,
	} {
		if got := judge(a, state); got != want {
			t.Errorf("judge(%q) = %q, want %q", state, got, want)
		}
	}
}

func TestBadStatesAreRefusedAtParse(t *testing.T) {
	t.Parallel()
	p := dag.NewParser(operators.NewRegistry(&ExternalTaskSensor{}, &TriggerDagRun{}).Schemas())
	for _, c := range []struct{ yaml, want string }{
		{"{task_id: s, operator: external_task_sensor, external_dag_id: x, external_task_id: t, allowed_states: [running]}",
			`allowed_states: "running" is not a task's final state`},
		{"{task_id: s, operator: external_task_sensor, external_dag_id: x, failed_states: [skipped]}",
			`failed_states: "skipped" is not a run's final state`},
		{"{task_id: s, operator: external_task_sensor, external_dag_id: x, external_task_id: t, allowed_states: [success], failed_states: [success]}",
			`"success" is in both`},
		{"{task_id: s, operator: external_task_sensor, external_dag_id: x, execution_date: '2026-01-01', execution_delta: 1h}",
			"not both"},
		{"{task_id: s, operator: trigger_dag_run, trigger_dag_id: x, allowed_states: [queued]}",
			`"queued" is not a run's final state`},
		{"{task_id: s, operator: trigger_dag_run}", "trigger_dag_id: required"},
	} {
		_, errs := p.ParseBytes("d.yaml", []byte("dag_id: d\ntasks:\n  - "+c.yaml+"\n"))
		if len(errs) == 0 || !strings.Contains(errs.Error(), c.want) {
			t.Errorf("%s: errors %v, want %q", c.yaml, errs, c.want)
		}
	}
}
