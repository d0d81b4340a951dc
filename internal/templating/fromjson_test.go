package templating

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestFromJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.c.XCom = memXCom{
		"extract/return_value": `{"orders": [3, 4], "n": 12345678901234567, "name": "x"}`, // a bash task's XCom: text
		"pod/return_value":     map[string]any{"orders": []any{int64(5)}},                 // a pod's XCom: decoded
		"plain/return_value":   "not json {",
	}
	for _, c := range []struct{ src, want string }{
		{"{{ (ti.xcom_pull('extract') | fromjson)['orders'][1] }}", "4"},
		{"{{ (ti.xcom_pull('extract') | fromjson).n }}", "12345678901234567"},
		{"{{ (ti.xcom_pull('extract') | fromjson).name }}", "x"},
		{"{{ (ti.xcom_pull('pod') | fromjson).orders[0] }}", "5"},
		{"{{ '[1, 2.5]' | fromjson | sum }}", "3.5"},
	} {
		got, err := render(t, c.src, b.c)
		if err != nil || got != c.want {
			t.Errorf("%s = %q, %v; want %q", c.src, got, err, c.want)
		}
	}
	for _, c := range []struct{ src, want string }{
		{"{{ ti.xcom_pull('plain') | fromjson }}", `fromjson: the value is not JSON ("not json {")`},
		{"{{ ti.xcom_pull('extract')['orders'] }}", "is a string, not a dict or list; if it holds JSON"},
		{"{{ ti.xcom_pull('extract').orders }}", "| fromjson"},
		{"{{ 'x' | fromjson(1) }}", "fromjson takes no arguments"},
	} {
		_, err := render(t, c.src, b.c)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to contain %q", c.src, err, c.want)
		}
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.c.XCom = failingXCom{err: errors.New("connection refused")}
	_, pullErr := render(t, "{{ ti.xcom_pull('a') }}", b.c)
	_, undefErr := render(t, "{{ params.tabel }}", setup(t).c)
	_, syntaxErr := Compile("{{ x ")
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"undefined name", fmt.Errorf("task t: %w", undefErr), true},
		{"syntax error", syntaxErr, true},
		{"xcom read failure", fmt.Errorf("task t: %w", pullErr), false},
		{"not a template error", errors.New("exit code 1"), false},
	} {
		if c.err == nil {
			t.Fatalf("%s: no error to classify", c.name)
		}
		if got := Permanent(c.err); got != c.want {
			t.Errorf("%s (%v): Permanent = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
