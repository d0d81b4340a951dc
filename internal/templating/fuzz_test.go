package templating

import (
	"context"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

var fuzzLimits sync.Once

// FuzzRender compiles and renders fuzzed templates with the sandbox's
// limits (a 4 MiB render budget instead of 64) against a fixed context,
// under a soft memory limit: a crash
// (stack overflow, out of memory), a render that outlives its deadline by
// far or output over the cap is a finding.
func FuzzRender(f *testing.F) {
	for _, tc := range hostileCases() {
		if len(tc.src) <= 4096 {
			f.Add(tc.src)
		}
	}
	for _, seed := range []string{
		"{{ ds }} {{ params.name | upper }} {{ ti.xcom_pull('write-xcom') }}",
		"{{ " + strings.Repeat("(", 80) + "1" + strings.Repeat(")", 80) + " }}",
		"{% set a = 'x' * 1000000 %}{% set a = a ~ a %}{% set a = a ~ a %}{% set a = a + a %}{{ a | length }}",
		"{% set l = [1] %}{% for i in range(30) %}{% set l = l + l %}{% endfor %}{{ l | length }}",
		"{{ ('{0:9999}' * 130).format('a') }}",
		"{{ dag_run.conf | pprint }}{{ dag_run.conf | tojson }}",
		`{{ "%#v" | format(ti) }}{{ "%v" | format(ti) }}`,
		"{{ 'a' * 10**9 }}",
		"{% set l = range(1000) | list %}{% for a in l %}{% for b in l %}{% endfor %}{% endfor %}",
		"{% macro m(n) %}{{ n }}{% endmacro %}{% for i in range(100) %}{{ m(i) }}{% endfor %}",
		"{{ dag_run.conf.x | shell_quote }}",
		"{{ [1, 2] * 3 }}{{ 2 ** 64 }}{{ (-2) ** 63 }}",
	} {
		f.Add(seed)
	}
	b := setup(f)
	deep := any("x")
	for range 200 {
		deep = []any{deep}
	}
	b.c.Conf = map[string]any{"x": "a'b", "deep": deep, "n": 3}
	f.Fuzz(func(t *testing.T, src string) {
		fuzzLimits.Do(func() { debug.SetMemoryLimit(512 << 20) })
		tpl, err := Compile(src)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		out, err := tpl.render(ctx, b.c, 4<<20)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("render of %q took %s, deadline 500ms", src, d)
		}
		if err == nil && len(out) > maxOutputBytes {
			t.Fatalf("render of %q gave %d bytes, over the cap", src, len(out))
		}
	})
}
