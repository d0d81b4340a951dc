package templating

import (
	"context"
	"errors"
	"strings"
)

// STUB — to be replaced by the real gonja-based implementation.

// Template is a compiled template.
type Template struct{ src string }

// SyntaxError is a template that does not parse.
type SyntaxError struct {
	Expr   string // the template source (or the offending expression)
	Line   int    // 1-based line within the template source
	Column int    // 1-based column within the template source
	Msg    string
}

func (e *SyntaxError) Error() string { return e.Msg }

// IsTemplate reports whether s contains template syntax.
func IsTemplate(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%") || strings.Contains(s, "{#")
}

// Compile parses src once.
func Compile(src string) (*Template, error) { return &Template{src: src}, nil }

// Render renders the template with the context.
func (t *Template) Render(ctx context.Context, c *Context) (string, error) {
	return "", errors.New("templating: not implemented")
}
