package templating

import (
	"fmt"
	"strings"
	"testing"
)

func TestStaticCheck(t *testing.T) {
	t.Parallel()
	params := map[string]any{"table": "orders", "limit": 10}
	for _, c := range []struct {
		src    string
		params map[string]any
		want   []string // substrings, one per problem, in order; none: clean
	}{
		{"{{ ds }} {{ params.table }} {{ ti.xcom_pull('a') }} {{ dag_run.conf.x }} {{ macros.ds_add(ds, 1) }}", params, nil},
		{"{{ prev_ds }}", nil, []string{`1:4: unknown name "prev_ds": not in the task context; Airflow 3 removed it`}},
		{"echo\n  {{ run_idd }}", nil, []string{`2:6: unknown name "run_idd"`, `did you mean "run_id"`}},
		{"{{ dag.owner }}", nil, []string{`dag has no attribute "owner"`}},
		{"{{ task.env.X }} {{ task.bash_command }}", nil, nil}, // a task's options (a mapped instance's too)
		{"{{ params.tabel }}", params, []string{`params.tabel is not declared; did you mean "table"?`}},
		{"{{ params['limt'] }}", params, []string{`params.limt is not declared`}},
		{"{{ params.anything }}", nil, nil}, // no params declared: they may come from conf
		// Names the template binds itself are not unknown.
		{"{% for f in params.files %}{{ f }} {{ loop.index }}{% endfor %}", nil, nil},
		{"{% for k, v in dag_run.conf.items() %}{{ k }}={{ v }}{% endfor %}", nil, nil},
		{"{% set day = ds %}{{ day }}", nil, nil},
		{"{% macro q(x, y=1) %}{{ x }}{{ y }}{% endmacro %}{{ q(ds) }}", nil, nil},
		{"{% with a = 1 %}{{ a }}{% endwith %}", nil, nil},
		{"{{ range(3) | list }} {{ dict(a=1) }}", nil, nil},
	} {
		tpl, err := Compile(c.src)
		if err != nil {
			t.Fatalf("Compile(%q): %v", c.src, err)
		}
		got := tpl.Check(c.params)
		var lines []string
		for _, p := range got {
			lines = append(lines, fmt.Sprintf("%d:%d: %s", p.Line, p.Column, p.Msg))
		}
		joined := strings.Join(lines, "\n")
		if len(c.want) == 0 && len(got) != 0 {
			t.Errorf("%q: unexpected problems:\n%s", c.src, joined)
		}
		for _, w := range c.want {
			if !strings.Contains(joined, w) {
				t.Errorf("%q: problems lack %q:\n%s", c.src, w, joined)
			}
		}
	}
}
