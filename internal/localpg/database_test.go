package localpg

import "testing"

func TestWithDatabase(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@h:5/postgres?sslmode=disable": "postgres://u:p@h:5/x%20y?sslmode=disable",
		"postgresql://h":                "postgresql://h/x%20y",
		"host=h user=u dbname=postgres": "host=h user=u dbname=postgres dbname='x y'",
	} {
		got, err := WithDatabase(in, "x y")
		if err != nil || got != want {
			t.Errorf("WithDatabase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
