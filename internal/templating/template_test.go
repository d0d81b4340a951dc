package templating

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// memXCom is an in-memory XComPuller keyed by "task/key".
type memXCom map[string]any

func (m memXCom) Pull(_ context.Context, taskID, key string) (any, bool, error) {
	v, ok := m[taskID+"/"+key]
	return v, ok, nil
}

type failingXCom struct{ err error }

func (f failingXCom) Pull(context.Context, string, string) (any, bool, error) {
	return nil, false, f.err
}

type panickingXCom struct{}

func (panickingXCom) Pull(context.Context, string, string) (any, bool, error) {
	panic("puller exploded")
}

type testBundle struct {
	c *Context
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	logical := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &testBundle{c: &Context{
		DagID:             "etl",
		TaskID:            "load",
		RunID:             "scheduled__2026-01-01T00:00:00+00:00",
		TryNumber:         2,
		LogicalDate:       logical,
		DataIntervalStart: logical,
		DataIntervalEnd:   logical.Add(24 * time.Hour),
		Params: map[string]any{
			"x":      7,
			"name":   "world",
			"flag":   true,
			"ratio":  0.5,
			"list":   []any{1, "two", nil, false},
			"nested": map[string]any{"a": 1},
			"UPPER":  "ok",
		},
		Conf: map[string]any{"k": "v", "n": json.Number("3")},
		XCom: memXCom{
			"write-xcom/return_value": json.RawMessage(`[1,2,3,4]`),
			"obj/return_value":        json.RawMessage(`{"b": [1.5, null, true], "a": 1}`),
			"num/return_value":        []byte(`1`),
			"str/return_value":        json.RawMessage(`"hello"`),
			"write-xcom/other":        json.RawMessage(`"other-key"`),
			"decoded/return_value":    map[string]any{"n": json.Number("10"), "f": 2.0},
		},
	}}
}

func render(t *testing.T, src string, c *Context) (string, error) {
	t.Helper()
	tpl, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return tpl.Render(ctx, c)
}

func TestRenderAirflowForms(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		src  string
		want string
	}{
		{"{{ ds }}", "2026-01-01"},
		{"{{ ds_nodash }}", "20260101"},
		{"{{ ts }}", "2026-01-01T00:00:00+00:00"},
		{"{{ ts_nodash }}", "20260101T000000"},
		{"{{ ts_nodash_with_tz }}", "20260101T000000+0000"},
		{"{{ logical_date }}", "2026-01-01 00:00:00+00:00"},
		{"{{ data_interval_start }}", "2026-01-01 00:00:00+00:00"},
		{"{{ data_interval_end }}", "2026-01-02 00:00:00+00:00"},
		{"{{ logical_date.year }}-{{ logical_date.month }}", "2026-1"},
		{"{{ logical_date.strftime('%Y/%m/%d %H:%M') }}", "2026/01/01 00:00"},
		{"{{ logical_date.isoformat() }}", "2026-01-01T00:00:00+00:00"},
		{"{{ run_id }}", "scheduled__2026-01-01T00:00:00+00:00"},
		{"{{ dag }}", "etl"},
		{"{{ dag.dag_id }}", "etl"},
		{"{{ task.task_id }}", "load"},
		{"{{ params.x }}", "7"},
		{"{{ params['x'] }}", "7"},
		{"{{ params.UPPER }}", "ok"},
		{"hello {{ params.name }}!", "hello world!"},
		{"{{ params.flag }}", "True"},
		{"{{ params.ratio }}", "0.5"},
		{"{{ params.list }}", "[1, 'two', None, False]"},
		{"{{ params.nested }}", "{'a': 1}"},
		{"{{ params.nested.a + 1 }}", "2"},
		{"{{ dag_run.conf.k }}", "v"},
		{"{{ dag_run.conf['k'] }}", "v"},
		{"{{ dag_run.conf.get('k', 1) }}", "v"},
		{"{{ dag_run.conf.get('missing', 1) }}", "1"},
		{"{{ dag_run.conf.n }}", "3"},
		{"{{ dag_run.run_id }}", "scheduled__2026-01-01T00:00:00+00:00"},
		{"{{ task_instance.xcom_pull('write-xcom')[0] }}", "1"},
		{"{{ ti.xcom_pull('write-xcom') }}", "[1, 2, 3, 4]"},
		{"{{ ti.xcom_pull(task_ids='write-xcom') }}", "[1, 2, 3, 4]"},
		{"{{ ti.xcom_pull(task_ids='write-xcom', key='other') }}", "other-key"},
		{"{{ ti.xcom_pull('write-xcom', key='other') }}", "other-key"},
		{"{{ ti.xcom_pull(['num', 'missing', 'str']) }}", "[1, None, 'hello']"},
		{"{{ ti.xcom_pull('missing') }}", "None"},
		{"{{ ti.xcom_pull('missing', default=5) }}", "5"},
		{"{{ ti.xcom_pull('num') }}", "1"},
		{"{{ ti.xcom_pull('num') + 1 }}", "2"},
		{"{{ ti.xcom_pull('obj') }}", "{'a': 1, 'b': [1.5, None, True]}"},
		{"{{ ti.xcom_pull('obj').b[0] }}", "1.5"},
		{"{{ ti.xcom_pull('decoded').n }} {{ ti.xcom_pull('decoded').f }}", "10 2.0"},
		{"{{ ti.try_number }}", "2"},
		{"{{ ti.task_id }}", "load"},
		{"{{ macros.ds_add(ds, 7) }}", "2026-01-08"},
		{"{{ macros.ds_add('2026-03-01', -1) }}", "2026-02-28"},
		{"{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}", "01/01/2026"},
		{"{{ macros.ds_format('20260315', '%Y%m%d', '%b %d, %Y') }}", "Mar 15, 2026"},
		{"{{ ti.xcom_pull('write-xcom') | tojson }}", "[1, 2, 3, 4]"},
		{"{{ ti.xcom_pull('obj') | tojson }}", `{"a": 1, "b": [1.5, null, true]}`},
		{"{{ {'a': 1} | tojson }}", `{"a": 1}`},
		{"{{ \"<it's>\" | tojson }}", `"\u003cit\u0027s\u003e"`},
		{"{{ params.missing | default('fallback') }}", "fallback"},
		{"{{ params.x | default('fallback') }}", "7"},
		{"{{ None }} {{ True }} {{ False }}", "None True False"},
		{"{{ [1, 2, 3, 4] }}", "[1, 2, 3, 4]"},
		{"{{ {'a': 1} }}", "{'a': 1}"},
		{"{{ 1.0 }} {{ 10 / 4 }}", "1.0 2.5"},
		{"{% for i in range(3) %}{{ i }},{% endfor %}", "0,1,2,"},
		{"{% for x in ti.xcom_pull('write-xcom') %}{{ x * 2 }} {% endfor %}", "2 4 6 8 "},
		{"{% if params.flag %}yes{% else %}no{% endif %}", "yes"},
		{"{% for x in ['a', 'b'] %}{{ loop.index }}{{ loop.cycle('+', '-') }}{% endfor %}", "1+2-"},
		{"{% for g in [{'k': 1}, {'k': 1}, {'k': 2}] | groupby('k') %}{{ g.grouper }}:{{ g.list | length }} {% endfor %}", "1:2 2:1 "},
		{"{{ [{'n': 'a'}, {'n': 'b'}] | map(attribute='n') | join(',') }}", "a,b"},
		{"{{ params.keys() | sort | first }}", "flag"},
		{"{{ 'yes' if params.y is defined else 'no' }}", "no"},
		{"{% macro greet(n) %}hi {{ n }}{% endmacro %}{{ greet(params.name) }}", "hi world"},
		{"{{ 'ab' * 2 }}", "abab"},
		{"echo {{ params.name | upper }}", "echo WORLD"},
		{"no template here", "no template here"},
	}
	for _, tt := range tests {
		got, err := render(t, tt.src, b.c)
		if err != nil {
			t.Errorf("Render(%q): %v", tt.src, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Render(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
}

func TestRenderErrorsNameTheExpression(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		src        string
		want       string // the whole Error()
		line, col  int
		wantTagged string
	}{
		{"{{ params.missing }}", `undefined: "params.missing" in {{ params.missing }} at line 1, column 4`, 1, 4, "{{ params.missing }}"},
		{"{{ params['missing'] }}", `undefined: "params['missing']" in {{ params['missing'] }} at line 1, column 4`, 1, 4, "{{ params['missing'] }}"},
		{"echo\n  {{ nope }}", `undefined: "nope" in {{ nope }} at line 2, column 6`, 2, 6, "{{ nope }}"},
		{"{{ ds }} {{ dag_run.conf.missing.deeper }}", `undefined: "dag_run.conf.missing" in {{ dag_run.conf.missing.deeper }} at line 1, column 13`, 1, 13, "{{ dag_run.conf.missing.deeper }}"},
		{"{% for x in params.list %}\n{{ x.nope }}{% endfor %}", `undefined: "x.nope" in {{ x.nope }} at line 2, column 4`, 2, 4, "{{ x.nope }}"},
		{"{{ ti.xcom_pull('write-xcom')[10] }}", `undefined: "ti.xcom_pull('write-xcom')[10]" in {{ ti.xcom_pull('write-xcom')[10] }} at line 1, column 4`, 1, 4, "{{ ti.xcom_pull('write-xcom')[10] }}"},
	}
	for _, tt := range tests {
		_, err := render(t, tt.src, b.c)
		var re *RenderError
		if !errors.As(err, &re) {
			t.Errorf("Render(%q) error = %v, want *RenderError", tt.src, err)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Render(%q) error =\n  %s\nwant\n  %s", tt.src, err, tt.want)
		}
		if re.Line != tt.line || re.Column != tt.col || re.Expr != tt.wantTagged {
			t.Errorf("Render(%q) position = %d:%d %q, want %d:%d %q", tt.src, re.Line, re.Column, re.Expr, tt.line, tt.col, tt.wantTagged)
		}
	}
}

func TestRenderXComErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	boom := errors.New("store unavailable")
	c := *b.c
	c.XCom = failingXCom{err: boom}
	_, err := render(t, "{{ ti.xcom_pull('a') }}", &c)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "xcom_pull task a key return_value: store unavailable in {{ ti.xcom_pull('a') }}") {
		t.Errorf("failing puller: err = %v", err)
	}

	c.XCom = nil
	if _, err := render(t, "{{ ti.xcom_pull('a') }}", &c); err == nil || !strings.Contains(err.Error(), "no XCom store") {
		t.Errorf("nil puller: err = %v", err)
	}

	for _, src := range []string{
		"{{ ti.xcom_pull() }}",
		"{{ ti.xcom_pull('a', unknown=1) }}",
		"{{ ti.xcom_pull('a', dag_id='other') }}",
		"{{ ti.xcom_pull(task_ids=1) }}",
	} {
		if _, err := render(t, src, b.c); err == nil {
			t.Errorf("Render(%q) succeeded, want an error", src)
		}
	}
}

// TestSandbox runs each hostile template with a deadline: it must fail (at
// Compile or Render) with the expected message, and neither hang nor crash.
func TestSandbox(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name, src, want string
	}{
		{"include", "{% include '/etc/passwd' %}", "{% include %} is not allowed"},
		{"extends", "{% extends '/etc/passwd' %}", "{% extends %} is not allowed"},
		{"import", "{% import '/etc/passwd' as p %}", "{% import %} is not allowed"},
		{"from import", "{% from '/etc/passwd' import x %}", "{% from %} is not allowed"},
		{"block self recursion", "{% block a %}{{ self.a() }}{% endblock %}", "{% block %} is not allowed"},
		{"recursive loop", "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "recursive for loops are not allowed"},
		{"huge range", "{% for i in range(100000000000) %}{{ i }}{% endfor %}", "range of 100000000000 items exceeds the limit of 10000"},
		{"huge range output", "{{ range(100000000000) }}", "exceeds the limit"},
		{"recursive macro", "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", `recursive call of macro "f" refused`},
		{"mutually recursive macros", "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}", "recursive call of macro"},
		{"dunder attribute", "{{ ti.__class__ }}", `undefined: "ti.__class__"`},
		{"go method on our object", "{{ ti.GetAttribute('xcom_pull') }}", "GetAttribute"},
		{"go method on dict literal", "{{ {'a': 1}.Keys() }}", `undefined: "{'a': 1}.Keys"`},
		{"go field on dict literal", "{{ {'a': 1}.Pairs }}", `undefined: `},
		{"go method on list literal", "{{ [1, 2].Len() }}", `undefined: "[1, 2].Len"`},
		{"go method on macro", "{% macro m() %}{% endmacro %}{{ m.Call() }}", `undefined: "m.Call"`},
		{"go method on set variable", "{% set d = {'a': 1} %}{{ d.Keys() }}", `undefined: "d.Keys"`},
		{"go method via item", "{{ {'a': 1}['Keys'] }}", "undefined: "},
		{"go method on datetime", "{{ logical_date.Unix() }}", "Unix"},
		{"go method of params map", "{{ params.String() }}", "String"},
		{"string repetition", "{{ 'x' * 1000000000000 }}", "string repetition"},
		{"padding filter", "{{ 'a' | center(1000000000) }}", "over the limit"},
		{"padding method", "{{ 'a'.ljust(1000000000) }}", "over the limit"},
		{"replace blow-up", "{% set a = 'x' * 1000000 %}{{ a | replace('x', a) }}", "over the limit"},
		{"format blow-up", "{% set a = 'x' * 1000000 %}{{ ('{0}' * 300000).format(a) }}", "over the limit"},
		{"indent blow-up", "{{ ('\n' * 1000000) | indent(9999) }}", "over the limit"},
		{"join blow-up", "{% set a = 'x' * 1000000 %}{{ range(10000) | join(a) }}", "over the limit"},
		{"batch fill", "{{ [1] | batch(1000000000, 'x') }}", "exceeds the sandbox limit"},
		{"format width", "{{ '%999999999d' | format(1) }}", "format width too large"},
		{"panicking puller", "{{ ti.xcom_pull('x') }}", "panicked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := *b.c
			if tt.name == "panicking puller" {
				c.XCom = panickingXCom{}
			}
			done := make(chan error, 1)
			go func() {
				tpl, err := Compile(tt.src)
				if err != nil {
					done <- err
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, err = tpl.Render(ctx, &c)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatalf("%s: no error", tt.src)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: error %q does not contain %q", tt.src, err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: did not finish within 5s", tt.src)
			}
		})
	}
}

func TestRenderStopsWhenContextIsDone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tpl, err := Compile("{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = tpl.Render(ctx, b.c)
	if !errors.Is(err, context.DeadlineExceeded) && (err == nil || !strings.Contains(err.Error(), "exceeds")) {
		t.Fatalf("err = %v, want deadline exceeded or output limit", err)
	}
}

func TestCompileSyntaxError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src       string
		line, col int
		msg       string
	}{
		{"{% if %}", 1, 1, "expected either a number, string, keyword or identifier in {% if %}"},
		{"echo {{ ds }}\n{% for x in %}{% endfor %}", 2, 8, "in {% for x in %}"},
		{"{{ params.x }}\n\n  {% include 'x' %}", 3, 14, "{% include %} is not allowed"},
		{"{% for x in y %}no end", 1, 23, "expected tag else or endfor"},
		{"a\n{{ ds | nosuch }}", 2, 9, `unknown filter "nosuch" in {{ ds | nosuch }}`},
		{"{% if ds is nosuch %}{% endif %}", 1, 13, `unknown test "nosuch"`},
	}
	for _, tt := range tests {
		_, err := Compile(tt.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%q) = %v, want *SyntaxError", tt.src, err)
			continue
		}
		if se.Line != tt.line || se.Column != tt.col || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("Compile(%q) = %d:%d %q, want %d:%d containing %q", tt.src, se.Line, se.Column, se.Msg, tt.line, tt.col, tt.msg)
		}
	}
}

func TestRenderConcurrently(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tpl, err := Compile("{{ dag_run.conf.i }}:{{ ti.xcom_pull('write-xcom')[0] }}:{% set x = params.x %}{{ x }}")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *b.c
			c.Conf = map[string]any{"i": i}
			got, err := tpl.Render(context.Background(), &c)
			if want := fmt.Sprintf("%d:1:7", i); err != nil || got != want {
				errs <- fmt.Errorf("render %d = %q, %v; want %q", i, got, err, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestIsTemplate(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{"echo hi": false, "{{ ds }}": true, "{% if x %}{% endif %}": true, "{# c #}": true, "{ x }": false} {
		if got := IsTemplate(s); got != want {
			t.Errorf("IsTemplate(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestStrftimeStrptime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 5, 14, 7, 9, 123456000, time.UTC)
	for format, want := range map[string]string{
		"%Y-%m-%d":          "2026-03-05",
		"%d/%m/%y %H:%M:%S": "05/03/26 14:07:09",
		"%I%p %a %A %b %B":  "02PM Thu Thursday Mar March",
		"%j %f %z %%":       "064 123456 +0000 %",
	} {
		if got := strftime(at, format); got != want {
			t.Errorf("strftime(%q) = %q, want %q", format, got, want)
		}
	}
	for _, tt := range []struct{ value, format, want string }{
		{"2026-03-05", "%Y-%m-%d", "2026-03-05T00:00:00Z"},
		{"05/Mar/2026 14:07", "%d/%b/%Y %H:%M", "2026-03-05T14:07:00Z"},
		{"20260305T140709", "%Y%m%dT%H%M%S", "2026-03-05T14:07:09Z"},
	} {
		got, err := strptime(tt.value, tt.format)
		if err != nil || got.Format(time.RFC3339) != tt.want {
			t.Errorf("strptime(%q, %q) = %v, %v; want %s", tt.value, tt.format, got, err, tt.want)
		}
	}
	if _, err := strptime("2026-13-01", "%Y-%m-%d"); err == nil {
		t.Error("strptime accepted month 13")
	}
}

func BenchmarkRenderXComPull(b *testing.B) {
	bundle := setup(b)
	tpl, err := Compile("{{ ti.xcom_pull('t')[0] }}")
	if err != nil {
		b.Fatal(err)
	}
	c := *bundle.c
	c.XCom = memXCom{"t/return_value": json.RawMessage(`[1,2,3,4]`)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, err := tpl.Render(ctx, &c)
		if err != nil || out != "1" {
			b.Fatalf("Render = %q, %v", out, err)
		}
	}
}
