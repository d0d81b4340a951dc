package templating

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/parser"
)

// tag is one {{ }}, {% %} or {# #} of the source, for error messages.
type tag struct {
	text      string
	line, col int // 1-based, column in characters
	endLine   int
}

// scanTags finds the tags of src. Quoted strings inside a tag are skipped so
// that "}}" in a string literal does not end the tag.
func scanTags(src string) []tag {
	var tags []tag
	line, lineStart := 1, 0
	advance := func(from, to int) {
		for i := from; i < to; i++ {
			if src[i] == '\n' {
				line++
				lineStart = i + 1
			}
		}
	}
	pos := 0
	for {
		i := strings.IndexByte(src[pos:], '{')
		if i < 0 || pos+i+1 >= len(src) {
			return tags
		}
		start := pos + i
		var closer string
		switch src[start+1] {
		case '{':
			closer = "}}"
		case '%':
			closer = "%}"
		case '#':
			closer = "#}"
		default:
			pos = start + 1
			continue
		}
		advance(pos, start)
		end := findCloser(src, start+2, closer)
		t := tag{line: line, col: utf8.RuneCountInString(src[lineStart:start]) + 1}
		advance(start, end)
		t.text, t.endLine = src[start:end], line
		tags = append(tags, t)
		pos = end
		if pos >= len(src) {
			return tags
		}
	}
}

func findCloser(src string, from int, closer string) int {
	var quote byte
	for i := from; i < len(src); i++ {
		c := src[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case closer != "#}" && (c == '\'' || c == '"'):
			quote = c
		case strings.HasPrefix(src[i:], closer):
			return i + len(closer)
		}
	}
	return len(src)
}

// tagAt returns the tag at line that contains expr (or the first tag at that
// line), and the column of expr within it when it is found on the tag's
// first line.
func tagAt(tags []tag, line int, expr string) (tag, int, bool) {
	var first *tag
	for i := range tags {
		t := &tags[i]
		if line < t.line || line > t.endLine {
			continue
		}
		if first == nil {
			first = t
		}
		if expr == "" {
			break
		}
		if j := strings.Index(t.text, expr); j >= 0 {
			prefix := t.text[:j]
			if t.line == line && !strings.Contains(prefix, "\n") {
				return *t, t.col + utf8.RuneCountInString(prefix), true
			}
			return *t, t.col, true
		}
	}
	if first == nil {
		return tag{}, 0, false
	}
	return *first, first.col, true
}

func syntaxError(src string, tags []tag, err error) *SyntaxError {
	se := &SyntaxError{Expr: src, Line: 1, Column: 1}
	var pe *parser.SyntaxError
	if !errors.As(err, &pe) {
		se.Msg = innermost(err).Error()
		return se
	}
	if pe.Line > 0 {
		se.Line, se.Column = pe.Line, max(pe.Column, 1)
	}
	msg := strings.TrimSuffix(pe.Message, ".")
	if pe.Raw != "" && !strings.Contains(pe.Message, pe.Raw) {
		msg += fmt.Sprintf(" (near %q)", pe.Raw)
	}
	if t, _, ok := tagAt(tags, se.Line, ""); ok && len(t.text) <= 200 {
		se.Expr = t.text
		msg += " in " + t.text
	}
	se.Msg = msg
	return se
}

// gonja v2.9.1's wording for undefined names and attributes (StrictUndefined).
var (
	atLineRe    = regexp.MustCompile(`at line (\d+)`)
	undefNameRe = regexp.MustCompile(`^Unable to evaluate name "(.*)"$`)
	undefAttrRe = regexp.MustCompile(`^(?:Unable|unable) to evaluate (.+): (?:attribute|item) .+ not found$`)
)

// renderError turns gonja's wrapped error chain into a RenderError naming
// the failing expression, its tag and its position.
func (t *Template) renderError(st *renderState, err error) error {
	if f := st.failure; f != nil && strings.Contains(err.Error(), f.Msg) {
		re := *f
		if re.Line == 0 {
			re.Line = lastLine(err)
		}
		if tg, ok := tagContaining(t.tags, re.Line, re.Column); ok {
			re.Expr = tg.text
			if re.Column == 0 {
				re.Column = tg.col
			}
		}
		return &re
	}
	cause := innermost(err)
	re := &RenderError{Err: cause}
	var expr string
	var sb *sandboxError
	switch msg := cause.Error(); {
	case undefNameRe.MatchString(msg):
		expr = undefNameRe.FindStringSubmatch(msg)[1]
		re.Msg = fmt.Sprintf("undefined: %q", expr)
	case undefAttrRe.MatchString(msg):
		expr = undefAttrRe.FindStringSubmatch(msg)[1]
		if s, ok := t.fallback[expr]; ok {
			re.Msg = fmt.Sprintf("undefined: %q", s.expr)
			re.Line, re.Column = s.line, s.col
			if tg, ok := tagContaining(t.tags, s.line, s.col); ok {
				re.Expr = tg.text
			}
			return re
		}
		re.Msg = fmt.Sprintf("undefined: %q", expr)
	case errors.As(cause, &sb):
		re.Msg = sb.Error()
	case errors.Is(cause, context.Canceled), errors.Is(cause, context.DeadlineExceeded):
		re.Msg = "rendering stopped: " + msg
	default:
		re.Msg = msg
	}
	line := lastLine(err)
	if tg, col, ok := tagAt(t.tags, line, expr); ok {
		re.Expr, re.Line, re.Column = tg.text, line, col
	}
	return re
}

// lastLine is the innermost "at line N" of gonja's error chain: the line of
// the output or statement that failed.
func lastLine(err error) int {
	all := atLineRe.FindAllStringSubmatch(err.Error(), -1)
	if len(all) == 0 {
		return 0
	}
	line, _ := strconv.Atoi(all[len(all)-1][1])
	return line
}

// tagContaining is the tag holding line:col (col 0: the first tag on line).
func tagContaining(tags []tag, line, col int) (tag, bool) {
	var best *tag
	for i := range tags {
		t := &tags[i]
		if line < t.line || line > t.endLine {
			continue
		}
		if col == 0 {
			return *t, true
		}
		if t.line < line || t.col <= col {
			best = t
		}
	}
	if best == nil {
		return tag{}, false
	}
	return *best, true
}

// innermost follows gonja's error chain (pkg/errors wrappers and error
// values stored in *exec.Value) down to the original error.
func innermost(err error) error {
	for i := 0; i < 100; i++ {
		if v, ok := err.(*exec.Value); ok {
			inner, ok := v.Interface().(error)
			if !ok || inner == error(v) {
				return err
			}
			err = inner
			continue
		}
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
	return err
}
