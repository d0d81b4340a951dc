package templating

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPrescanRefusesDeepNestingWithPosition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		line, col int
		msg       string
	}{
		{"parentheses", "{{ " + strings.Repeat("(", 65) + "1" + strings.Repeat(")", 65) + " }}", 1, 68, "brackets nested deeper than 64 levels at line 1, column 68"},
		{"brackets on line 3", "a\nb\n  {{ " + strings.Repeat("[", 70) + " }}", 3, 70, "brackets nested deeper than 64"},
		{"dict braces", "{{ " + strings.Repeat("{'a': ", 65) + "1" + strings.Repeat("}", 65) + " }}", 1, 0, "brackets nested deeper than 64"},
		{"blocks", strings.Repeat("{% if x %}\n", 65) + strings.Repeat("{% endif %}", 65), 65, 1, "blocks nested deeper than 64 levels at line 65, column 1"},
		{"for blocks", strings.Repeat("{%- for x in y %}", 65), 1, 0, "blocks nested deeper than 64"},
		{"operators", "{{ " + strings.Repeat("x.", 1001) + "y }}", 1, 0, "more than 1000 operators in one tag"},
		{"size", strings.Repeat("x", maxSourceBytes+1), 1, 1, "template of 262145 bytes exceeds the limit of 262144 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.src)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Compile: %v, want a *SyntaxError", err)
			}
			if !strings.Contains(se.Msg, tt.msg) || se.Line != tt.line || (tt.col != 0 && se.Column != tt.col) {
				t.Fatalf("got %d:%d %q, want %d:%d %q", se.Line, se.Column, se.Msg, tt.line, tt.col, tt.msg)
			}
		})
	}
}

func TestPrescanAcceptsOrdinaryTemplates(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"{{ {'a': {'b': [1, (2 + 3)]}} }}",
		"{{ ')))' ~ '}}' ~ \"{{\" }}",
		strings.Repeat("{% if x %}{% endif %}", 1000),
		"{% raw %}" + strings.Repeat("(", 500) + "{% endraw %}",
		"{# " + strings.Repeat("[", 500) + " #}",
		strings.Repeat("(", 500) + " text is not an expression",
		"{{ " + strings.Repeat("(", 64) + "1" + strings.Repeat(")", 64) + " }}",
	} {
		if se := prescan(src); se != nil {
			t.Errorf("prescan(%.60q): %v", src, se)
		}
	}
}

func TestRenderBudgetAndPythonOperators(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct{ src, want string }{
		{"{{ 10 ** 2 }}", "100"},
		{"{{ 2 ** 0.5 > 1.41 }}", "True"},
		{"{{ 'ab' * 3 }}", "ababab"},
		{"{{ 3 * 'ab' }}", "ababab"},
		{"{{ 'a' * 0 }}|{{ 'a' * -1 }}", "|"},
		{"{{ 2 * 3 }} {{ 1.5 * 2 }}", "6 3.0"},
		{"{{ [1] + [2, 'x'] }}", "[1, 2, 'x']"},
		{"{{ [1, 2] * 2 }}", "[1, 2, 1, 2]"},
		{"{{ 'a' + 'b' }} {{ 1 + 2 }} {{ 'n' ~ 1 ~ [1] }}", "ab 3 n1[1]"},
		{"{{ params.name ~ '!' }}", "world!"},
		{"{{ (-1) ** 1000000001 }}", "-1"},
		{"{{ ('x' * 10 ** 3) | length }}", "1000"},
	}
	for _, tt := range tests {
		got, err := render(t, tt.src, b.c)
		if err != nil || got != tt.want {
			t.Errorf("Render(%q) = %q, %v; want %q", tt.src, got, err, tt.want)
		}
	}
	refused := []struct{ src, want string }{
		{"{{ 'a' * 10**9 }}", "string repetition 'a' * 10 ** 9 exceeds the render budget"},
		{"{{ 'a' * 1.5 }}", "can't multiply sequence by non-int of type 'float'"},
		{"{{ [1] + 'a' }}", "can only concatenate list (not str) to list"},
		{"{% set a = 'x' * 1000000 %}{% for i in range(100) %}{% set b = a ~ i %}{% endfor %}", "string concatenation a ~ i exceeds the render budget"},
		{"{% set a = 'x' * 60000000 %}{{ a ~ a }}", "string concatenation a ~ a exceeds the render budget"},
		{"{% set a = 'x' * 2000000 %}{{ [a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a] | tojson }}", "filter tojson exceeds the render budget"},
		{"{% macro m() %}" + strings.Repeat("x", 100_000) + "{% endmacro %}{% for i in range(1000) %}{% set y = m() %}{% endfor %}", `output of macro "m" exceeds the render budget`},
		{"{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "more than 100000 loop iterations"},
	}
	for _, tt := range refused {
		_, err := render(t, tt.src, b.c)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Render(%.80q): %v, want an error containing %q", tt.src, err, tt.want)
		}
	}
}

func TestFormatShowsNoGoInternals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, src := range []string{`{{ "%#v" | format(ti) }}`, `{{ "%p" | format(ti) }}`, `{{ "%T" | format(1) }}`, `{{ "%+#v" | format(params) }}`} {
		_, err := render(t, src, b.c)
		if err == nil || !strings.Contains(err.Error(), "is not allowed in podflow templates") {
			t.Errorf("Render(%s): %v, want a refusal", src, err)
		}
	}
	for src, want := range map[string]string{
		`{{ "%v" | format(ti) }}`:                "<TaskInstance: etl.load scheduled__2026-01-01T00:00:00+00:00 [running]>",
		`{{ "%v|%s" | format(params.list, 1) }}`: "[1, 'two', None, False]|%!s(int=1)",
		`{{ "%s-%d" | format("a", 2) }}`:         "a-2",
		`{{ "{}".format(params.nested) }}`:       "{'a': 1}",
	} {
		got, err := render(t, src, b.c)
		if err != nil || got != want {
			t.Errorf("Render(%s) = %q, %v; want %q", src, got, err, want)
		}
		if strings.Contains(got, "templating.") || strings.Contains(got, "0x") {
			t.Errorf("Render(%s) = %q shows Go internals", src, got)
		}
	}
}

func TestLoopOverBuiltListStopsWhenContextIsDone(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tpl := MustCompile("{% set l = range(1000) | list %}{% for a in l %}{% for b in l %}{% if a == b %}{% endif %}{% endfor %}{% endfor %}")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tpl.Render(ctx, b.c)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("render stopped after %s, want soon after the 20ms deadline", d)
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "''"},
		{"abc", "abc"},
		{"A-Za_z0.9/x:y,z+w=1@%", "A-Za_z0.9/x:y,z+w=1@%"},
		{"a b", "'a b'"},
		{"it's", `'it'"'"'s'`},
		{"'", `''"'"''`},
		{"$(rm -rf /)", "'$(rm -rf /)'"},
		{"a;b|c&d`e`", "'a;b|c&d`e`'"},
		{"\n", "'\n'"},
		{"é", "'é'"},
		{"*", "'*'"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	b := setup(t)
	c := *b.c
	c.Conf = map[string]any{"x": "a'; rm -rf / #", "n": 3, "none": nil}
	got, err := render(t, "echo {{ dag_run.conf.x | shell_quote }} {{ dag_run.conf.n | shell_quote }} {{ dag_run.conf.none | shell_quote }}", &c)
	if want := `echo 'a'"'"'; rm -rf / #' 3 None`; err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

func TestCacheEvictsLeastRecentlyUsedByBytes(t *testing.T) {
	t.Parallel()
	c := &Cache{MaxBytes: 256 << 10}
	first := "{{ params.first }}" + strings.Repeat(" ", 2000)
	tpl, err := c.Compile(first)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := c.Compile(first); again != tpl {
		t.Fatal("second Compile of the same source did not come from the cache")
	}
	for i := range 100 {
		if _, err := c.Compile(fmt.Sprintf("{{ params.x%d }}%s", i, strings.Repeat(" ", 2000))); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			c.Compile(first) // keep it recently used
		}
	}
	entries, bytes := c.Stats()
	if bytes > c.MaxBytes || entries >= 101 || entries == 0 {
		t.Fatalf("cache holds %d entries, %d bytes; want fewer than 101 within %d bytes", entries, bytes, c.MaxBytes)
	}
	if again, _ := c.Compile(first); again != tpl {
		t.Fatal("the recently used entry was evicted")
	}
	if again, _ := c.Compile("{{ params.x0 }}" + strings.Repeat(" ", 2000)); again == nil {
		t.Fatal("Compile of an evicted source failed")
	}
	_, err = c.Compile("{% if %}")
	if _, err2 := c.Compile("{% if %}"); err == nil || err2 == nil || err.Error() != err2.Error() {
		t.Fatalf("errors not cached: %v, %v", err, err2)
	}
}
