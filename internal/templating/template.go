package templating

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Template is a compiled template. It is immutable after Compile, and Render
// may be called from many goroutines at once.
type Template struct {
	src  string
	tpl  *exec.Template
	tags []tag
	*tree
}

// SyntaxError is a template that does not parse.
type SyntaxError struct {
	Expr   string // the template source (or the offending expression)
	Line   int    // 1-based line within the template source
	Column int    // 1-based column within the template source
	Msg    string
}

func (e *SyntaxError) Error() string { return e.Msg }

// RenderError is a template that parsed but failed while rendering: an
// undefined name, a failing xcom_pull, a sandbox limit. Error() reads like
//
//	undefined: "params.missing" in {{ params.missing }} at line 1, column 4
type RenderError struct {
	Expr   string // the tag that failed, e.g. "{{ params.missing }}"; empty if unknown
	Line   int    // 1-based line within the template source
	Column int    // 1-based column of the failing expression (or of its tag)
	Msg    string // what went wrong, e.g. `undefined: "params.missing"`
	Err    error  // the underlying cause, for errors.Is / errors.As; may be nil
}

func (e *RenderError) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	if e.Expr != "" {
		b.WriteString(" in ")
		b.WriteString(e.Expr)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " at line %d, column %d", e.Line, e.Column)
	}
	return b.String()
}

func (e *RenderError) Unwrap() error { return e.Err }

// pullError is a failure to read an XCom (the database, not the template):
// it may pass, so it is not Permanent.
type pullError struct{ err error }

func (e *pullError) Error() string { return e.err.Error() }
func (e *pullError) Unwrap() error { return e.err }

// Permanent reports whether err is a template error that the same template,
// rendered again with the same run, would give again: a syntax error, an
// undefined name, a bad call, a sandbox limit. A retry cannot help, so the
// task fails at once (Airflow's AirflowFailException). Failures to read an
// XCom and renders cut short by their context are not permanent.
func Permanent(err error) bool {
	var se *SyntaxError
	if errors.As(err, &se) {
		return true
	}
	var re *RenderError
	if !errors.As(err, &re) {
		return false
	}
	var pe *pullError
	return !errors.As(err, &pe) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		!strings.HasPrefix(re.Msg, "rendering stopped") && !strings.HasPrefix(re.Msg, "template rendering panicked")
}

// IsTemplate reports whether s contains template syntax.
func IsTemplate(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%") || strings.Contains(s, "{#")
}

// Compile parses src once. A template that does not parse, uses a statement
// the sandbox refuses (include, import, from, extends, block) or names an
// unknown filter or test gives a *SyntaxError.
func Compile(src string) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, &SyntaxError{Expr: src, Line: 1, Column: 1, Msg: fmt.Sprintf("template could not be parsed (parser panic: %v)", r)}
		}
	}()
	if se := prescan(src); se != nil {
		return nil, se
	}
	box := theSandbox()
	tpl, err := exec.NewTemplate(rootTemplateKey, box.config, sourceLoader{src: src}, box.env)
	tags := scanTags(src)
	if err != nil {
		return nil, syntaxError(src, tags, err)
	}
	tr, err := guardTree(tpl.Root(), box.env)
	if err != nil {
		return nil, syntaxError(src, tags, err)
	}
	return &Template{src: src, tpl: tpl, tags: tags, tree: tr}, nil
}

// MustCompile is Compile for templates known to be valid (tests, constants).
func MustCompile(src string) *Template {
	t, err := Compile(src)
	if err != nil {
		panic(fmt.Sprintf("templating: compile %q: %v", src, err))
	}
	return t
}

// Source returns the template text Compile was given.
func (t *Template) Source() string { return t.src }

// Render renders the template with the context. Rendering stops with an
// error when ctx is done or defaultRenderTime has passed (checked at every
// output write, loop pass, operator, filter, function and macro call), when
// it would build more than the render budget or output more than the
// sandbox limit, or when gonja panics.
func (t *Template) Render(ctx context.Context, c *Context) (out string, err error) {
	return t.render(ctx, c, maxRenderBytes)
}

// render is Render with a byte budget (the fuzz test uses a smaller one, so
// that it spends its time exploring rather than copying memory).
func (t *Template) render(ctx context.Context, c *Context, budgetBytes int64) (out string, err error) {
	if c == nil {
		return "", errors.New("templating: render: nil Context")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	defer func() {
		if r := recover(); r != nil {
			out = ""
			err = &RenderError{Msg: fmt.Sprintf("template rendering panicked: %v", r), Err: fmt.Errorf("panic: %v\n%s", r, debug.Stack())}
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, defaultRenderTime)
	defer cancel()
	st := &renderState{budget: newBudget(ctx, budgetBytes), ctx: ctx, c: c, sites: t.sites}
	w := &outputWriter{ctx: ctx}
	box := theSandbox()
	vars := box.globals.Inherit()
	vars.Set(stateKey, st)
	for _, name := range t.names {
		if v, ok := variable(st, name); ok {
			vars.Set(name, v)
		} else if v, ok := c.Extra[name]; ok {
			vars.Set(name, toPython(v))
		}
	}
	env := &exec.Environment{
		Context:           vars,
		Filters:           box.env.Filters,
		Tests:             box.env.Tests,
		ControlStructures: box.env.ControlStructures,
		Methods:           box.env.Methods,
	}
	r := exec.NewRenderer(env, w, box.config, sourceLoader{}, t.tpl)
	if err := r.Execute(); err != nil {
		return "", t.renderError(st, err)
	}
	return w.b.String(), nil
}

// outputWriter collects the output, caps its size and stops the render once
// ctx is done.
type outputWriter struct {
	ctx context.Context
	b   strings.Builder
}

func (w *outputWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if w.b.Len()+len(p) > maxOutputBytes {
		return 0, &sandboxError{msg: fmt.Sprintf("output exceeds %d bytes", maxOutputBytes)}
	}
	return w.b.Write(p)
}

func (w *outputWriter) WriteString(s string) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if w.b.Len()+len(s) > maxOutputBytes {
		return 0, &sandboxError{msg: fmt.Sprintf("output exceeds %d bytes", maxOutputBytes)}
	}
	return w.b.WriteString(s)
}
