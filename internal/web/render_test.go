package web

import (
	"reflect"
	"testing"
	"time"
)

func TestHighlightYAML(t *testing.T) {
	tests := []struct {
		line string
		want []Token
	}{
		{"# a comment", []Token{{"c", "# a comment"}}},
		{"dag_id: etl", []Token{{"k", "dag_id"}, {"", ":"}, {"", " etl"}}},
		{"  - task_id: load", []Token{{"", "  - "}, {"k", "task_id"}, {"", ":"}, {"", " load"}}},
		{"retries: 2", []Token{{"k", "retries"}, {"", ":"}, {"n", " 2"}}},
		{"catchup: false # no", []Token{{"k", "catchup"}, {"", ":"}, {"n", " false"}, {"c", " # no"}}},
		{`cmd: "echo {{ ds }}"`, []Token{{"k", "cmd"}, {"", ":"}, {"", " "}, {"s", `"echo {{ ds }}"`}}},
		{"cmd: echo {{ ds }}", []Token{{"k", "cmd"}, {"", ":"}, {"", " echo "}, {"t", "{{ ds }}"}}},
		{"url: http://x", []Token{{"k", "url"}, {"", ":"}, {"", " http://x"}}},
		{`"quoted: key"`, []Token{{"s", `"quoted: key"`}}},
	}
	for _, tt := range tests {
		got := HighlightYAML(tt.line)
		if len(got) != 1 || got[0].N != 1 || !reflect.DeepEqual(got[0].Tokens, tt.want) {
			t.Errorf("HighlightYAML(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
	if n := len(HighlightYAML("a: 1\nb: 2\n")); n != 2 {
		t.Errorf("two lines highlighted as %d", n)
	}
}

func TestParams(t *testing.T) {
	got := Params(map[string]any{"name": "Ada", "times": float64(3), "ratio": 0.5, "loud": true,
		"tags": []any{"a"}, "cfg": map[string]any{"k": "v"}, "none": nil})
	want := []param{
		{Name: "cfg", Kind: "json", Value: `{"k":"v"}`},
		{Name: "loud", Kind: "boolean", Checked: true},
		{Name: "name", Kind: "string", Value: "Ada"},
		{Name: "none", Kind: "json", Value: "null"},
		{Name: "ratio", Kind: "number", Value: "0.5"},
		{Name: "tags", Kind: "json", Value: `["a"]`},
		{Name: "times", Kind: "integer", Value: "3"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Params =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "—", 120 * time.Millisecond: "120ms", 4200 * time.Millisecond: "4.2s",
		3*time.Minute + 5*time.Second: "3m05s", time.Hour + 2*time.Minute: "1h02m",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestSafeNextAndLiveTarget(t *testing.T) {
	for next, want := range map[string]string{"/dags/etl": "/dags/etl", "": "/", "//evil.example": "/",
		"https://evil.example/": "/", `/\\evil`: "/"} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
	for src, ok := range map[string]bool{"/dags/etl?offset=25": true, "/": true, "/api/v1/dags": false,
		"/live?src=/": false, "//evil.example/x": false, "http://evil.example/": false} {
		u, err := liveTarget(src)
		if (err == nil) != ok {
			t.Errorf("liveTarget(%q) err = %v, want ok=%v", src, err, ok)
		}
		if err == nil && u.Query().Get("fragment") != "live" {
			t.Errorf("liveTarget(%q) = %s lacks fragment=live", src, u)
		}
	}
}
