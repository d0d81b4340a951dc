package operators

import (
	"reflect"
	"testing"
)

func TestParseLiteral(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want any
		err  bool
	}{
		{`[1, 2, 3]`, []any{1, 2, 3}, false},
		{` ["a", "b"] `, []any{"a", "b"}, false},
		{`['a', 'it\'s']`, []any{"a", "it's"}, false},
		{`[{'x': 1, 'y': None}, {'x': 2.5, 'y': True}]`, []any{map[string]any{"x": 1, "y": nil}, map[string]any{"x": 2.5, "y": true}}, false},
		{`('a', 'b',)`, []any{"a", "b"}, false},
		{`[]`, []any{}, false},
		{`task_a`, nil, true},
		{`'task_a'`, "task_a", false},
		{`[1, 2`, nil, true},
		{`[1 2]`, nil, true},
		{`{"k": [1, {"n": -3}]}`, map[string]any{"k": []any{1, map[string]any{"n": -3}}}, false},
	}
	for _, c := range cases {
		got, err := ParseLiteral(c.in)
		if (err != nil) != c.err {
			t.Errorf("ParseLiteral(%q) error %v, want error %v", c.in, err, c.err)
			continue
		}
		if !c.err && !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseLiteral(%q) = %#v, want %#v", c.in, got, c.want)
		}
	}
}
