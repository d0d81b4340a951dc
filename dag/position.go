package dag

import (
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// source gives the text of a file's lines, to map a position inside a
// scalar's value (a template's line and column, a token of a dependency
// chain) back to the file.
type source struct {
	data  []byte
	lines []string // split lazily: most files never need it
}

// line returns the 1-based line n without its line break, or "".
func (s *source) line(n int) string {
	if s.lines == nil {
		s.lines = strings.Split(string(s.data), "\n")
	}
	if n < 1 || n > len(s.lines) {
		return ""
	}
	return strings.TrimSuffix(s.lines[n-1], "\r")
}

// scalarPosition maps a 1-based line and column inside the value of scalar
// n to a line and column in the file. When the mapping cannot be trusted
// (escapes, folded or multi-line plain scalars) it returns the node's own
// position.
func (s *source) scalarPosition(n *yaml.Node, line, col int) (int, int) {
	if n.Kind != yaml.ScalarNode || line < 1 || col < 1 {
		return n.Line, n.Column
	}
	valueLines := strings.Split(n.Value, "\n")
	if line > len(valueLines) {
		return n.Line, n.Column
	}
	before, ok := runePrefix(valueLines[line-1], col-1)
	if !ok {
		return n.Line, n.Column
	}
	switch n.Style &^ (yaml.TaggedStyle | yaml.FlowStyle) {
	case 0, yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle:
		if line != 1 {
			return n.Line, n.Column
		}
		start := n.Column
		if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 {
			start++
		}
		text, ok := runeSuffix(s.line(n.Line), start-1)
		if !ok || !strings.HasPrefix(text, before) {
			return n.Line, n.Column
		}
		return n.Line, start + utf8.RuneCountInString(before)
	case yaml.LiteralStyle:
		fileLine := n.Line + line
		text := s.line(fileLine)
		if !strings.HasSuffix(text, valueLines[line-1]) {
			return n.Line, n.Column
		}
		indent := utf8.RuneCountInString(text) - utf8.RuneCountInString(valueLines[line-1])
		return fileLine, indent + utf8.RuneCountInString(before) + 1
	}
	return n.Line, n.Column
}

// runePrefix returns the first n runes of s.
func runePrefix(s string, n int) (string, bool) {
	i := 0
	for k := 0; k < n; k++ {
		if i >= len(s) {
			return "", false
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i], true
}

// runeSuffix returns s without its first n runes.
func runeSuffix(s string, n int) (string, bool) {
	p, ok := runePrefix(s, n)
	if !ok {
		return "", false
	}
	return s[len(p):], true
}
