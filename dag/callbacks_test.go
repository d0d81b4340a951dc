package dag

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCallbacksParse(t *testing.T) {
	d := mustParse(t, `
dag_id: x
on_failure_callback: [ops]
on_success_callback: ops
deadline: {reference: logical_date, interval: 2h, notify: [pager]}
default_args:
  on_failure_callback: [ops, {notifier: mail, message: "{{ ti.task_id }} failed"}]
tasks:
  - {task_id: a, operator: empty}
  - {task_id: b, operator: empty, on_failure_callback: [], on_retry_callback: [ops], on_execute_callback: ops, on_skipped_callback: [ops]}
  - {task_id: c, operator: empty, on_success_callback: [mail]}
`)
	if got := d.Callbacks; !reflect.DeepEqual(got, Callbacks{EventFailure: {{Notifier: "ops", Line: 2, Column: 23}},
		EventSuccess: {{Notifier: "ops", Line: 3, Column: 22}}}) {
		t.Errorf("DAG callbacks %+v", got)
	}
	if dl := d.Deadline; dl == nil || dl.Reference != "logical_date" || dl.Interval != 2*time.Hour || dl.Notify[0].Notifier != "pager" {
		t.Errorf("deadline %+v", dl)
	}
	a, b, c := d.Task("a").Callbacks, d.Task("b").Callbacks, d.Task("c").Callbacks
	if len(a[EventFailure]) != 2 || a[EventFailure][1].Message != "{{ ti.task_id }} failed" {
		t.Errorf("a's failure callbacks (from default_args) %+v", a[EventFailure])
	}
	if len(b[EventFailure]) != 0 || b[EventRetry][0].Notifier != "ops" || b[EventExecute][0].Notifier != "ops" || b[EventSkipped][0].Notifier != "ops" {
		t.Errorf("b's callbacks %+v", b)
	}
	if len(c[EventFailure]) != 2 || c[EventSuccess][0].Notifier != "mail" || len(a[EventSuccess]) != 0 {
		t.Errorf("c's callbacks %+v (a's %+v): a task's own callback must not leak into another's", c, a)
	}
	errs := d.CheckNotifiers([]string{"ops", "mial"})
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`dag.yaml:4:60: notifier "pager" is not declared in podflow.yaml's notifiers; declared: ops, mial`,
		`dag.yaml:6:41: notifier "mail" is not declared in podflow.yaml's notifiers; did you mean mial?`,
		`dag.yaml:10:57: notifier "mail" is not declared in podflow.yaml's notifiers; did you mean mial?`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("CheckNotifiers:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCallbacksErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"bad entry", `
dag_id: x
on_failure_callback: [{notifer: ops}]
tasks: [{task_id: a, operator: empty}]
`, "dag.yaml:2:24: on_failure_callback[0]: unknown key notifer in a callback; did you mean notifier?"},
		{"bad template", `
dag_id: x
on_failure_callback: [{notifier: ops, message: "{{ ti.task_id "}]
tasks: [{task_id: a, operator: empty}]
`, "dag.yaml:2:48: on_failure_callback[0].message: template does not parse"},
		{"number", `
dag_id: x
tasks: [{task_id: a, operator: empty, on_retry_callback: [{}]}]
`, "dag.yaml:2:59: on_retry_callback[0]: notifier: required key is missing"},
		{"deadline reference", `
dag_id: x
deadline: {reference: started, interval: 1h, notify: [ops]}
tasks: [{task_id: a, operator: empty}]
`, `dag.yaml:2:23: deadline.reference: wants logical_date, queued_at or fixed: "HH:MM TZ", got "started"`},
		{"deadline fixed", `
dag_id: x
deadline: {fixed: "25:00 Europe/Berlin", notify: [ops]}
tasks: [{task_id: a, operator: empty}]
`, `dag.yaml:2:19: deadline.fixed: wants "HH:MM" and a time zone, e.g. "07:00 Europe/Berlin", got "25:00 Europe/Berlin"`},
		{"deadline zone", `
dag_id: x
deadline: {fixed: "07:00 Mars/Olympus", notify: [ops]}
tasks: [{task_id: a, operator: empty}]
`, `dag.yaml:2:19: deadline.fixed: `},
		{"deadline notify", `
dag_id: x
deadline: {reference: queued_at, interval: 1h}
tasks: [{task_id: a, operator: empty}]
`, `dag.yaml:2:11: deadline: notify: required`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := parse(t, tc.src)
			if len(errs) == 0 || !strings.HasPrefix(errs[0].Error(), tc.want) {
				t.Errorf("errors %v; want one starting %q", errs, tc.want)
			}
		})
	}
	d := mustParse(t, `
dag_id: x
deadline: {fixed: "07:30 Europe/Berlin", notify: [ops]}
tasks: [{task_id: a, operator: empty}]
`)
	if dl := d.Deadline; dl.Reference != "fixed" || dl.FixedTime != "07:30" || dl.FixedZone != "Europe/Berlin" {
		t.Errorf("fixed deadline %+v", dl)
	}
}
