package templating

import (
	"errors"
	"strings"
	"testing"
)

func TestShellLengthIsExplained(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		src       string
		line, col int
		want      string
	}{
		{"x=abc\necho ${#x} chars", 2, 7, "{{ '${#' }}NAME}"},
		{"echo {# unclosed", 1, 6, "never closed with '#}'"},
	} {
		_, err := Compile(c.src)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line != c.line || se.Column != c.col || !strings.Contains(se.Msg, c.want) {
			t.Errorf("Compile(%q) = %v (%+v), want line %d col %d and %q", c.src, err, se, c.line, c.col, c.want)
		}
	}
	// The suggested spelling works and prints the shell's own syntax.
	b := setup(t)
	got, err := render(t, "echo {{ '${#' }}x}", b.c)
	if err != nil || got != "echo ${#x}" {
		t.Fatalf("suggested form = %q, %v", got, err)
	}
}
