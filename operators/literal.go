package operators

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ParseLiteral reads what a template rendered as a value: JSON, or the
// Python literal a Jinja expression prints ("['a', 'b']", "{'k': None}",
// "True"), since {{ ti.xcom_pull('t') }} renders a list as Python does.
// Numbers come back as int or float64, objects as map[string]any.
func ParseLiteral(s string) (any, error) {
	s = strings.TrimSpace(s)
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err == nil && !dec.More() {
		return fromJSONNumbers(v), nil
	}
	p := &pyLiteral{s: s}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, fmt.Errorf("unexpected %s at offset %d", excerptAt(p.s, p.i), p.i)
	}
	return v, nil
}

// Excerpt is the start of a rendered value, for errors that quote it.
func Excerpt(s string) string {
	const max = 80
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

func excerptAt(s string, i int) string { return Excerpt(s[i:]) }

// fromJSONNumbers turns json.Numbers into int (when whole) or float64.
func fromJSONNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.Atoi(x.String()); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSONNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fromJSONNumbers(x[k])
		}
	}
	return v
}

// pyLiteral parses Python literals: lists, tuples, dicts, strings, numbers,
// True, False, None.
type pyLiteral struct {
	s string
	i int
}

const maxLiteralDepth = 64

func (p *pyLiteral) space() {
	for p.i < len(p.s) && strings.ContainsRune(" \t\r\n", rune(p.s[p.i])) {
		p.i++
	}
}

func (p *pyLiteral) value(depth int) (any, error) {
	if depth > maxLiteralDepth {
		return nil, fmt.Errorf("values nest deeper than %d levels", maxLiteralDepth)
	}
	p.space()
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("unexpected end of the value")
	}
	switch c := p.s[p.i]; {
	case c == '[' || c == '(':
		closer := byte(']')
		if c == '(' {
			closer = ')'
		}
		p.i++
		out := []any{}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == closer {
				p.i++
				return out, nil
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			if err := p.separator(closer); err != nil {
				return nil, err
			}
		}
	case c == '{':
		p.i++
		out := map[string]any{}
		for {
			p.space()
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				return out, nil
			}
			k, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			p.space()
			if p.i >= len(p.s) || p.s[p.i] != ':' {
				return nil, fmt.Errorf("wants ':' after a dict key at offset %d", p.i)
			}
			p.i++
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(k)] = v
			if err := p.separator('}'); err != nil {
				return nil, err
			}
		}
	case c == '\'' || c == '"':
		return p.str(c)
	}
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(",]})}: \t\r\n", rune(p.s[p.i])) {
		p.i++
	}
	word := p.s[start:p.i]
	switch word {
	case "True", "true":
		return true, nil
	case "False", "false":
		return false, nil
	case "None", "null":
		return nil, nil
	}
	if n, err := strconv.Atoi(word); err == nil {
		return n, nil
	}
	if f, err := strconv.ParseFloat(word, 64); err == nil {
		return f, nil
	}
	return nil, fmt.Errorf("unexpected %s at offset %d", excerptAt(p.s, start), start)
}

// separator reads the ',' between items or sees the closer ahead.
func (p *pyLiteral) separator(closer byte) error {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ',' {
		p.i++
		return nil
	}
	if p.i < len(p.s) && p.s[p.i] == closer {
		return nil
	}
	return fmt.Errorf("wants ',' or '%c' at offset %d", closer, p.i)
}

// str reads a quoted Python string with its common escapes.
func (p *pyLiteral) str(quote byte) (string, error) {
	start := p.i
	p.i++
	var b bytes.Buffer
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == quote:
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			p.i++
			switch e := p.s[p.i]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'x', 'u':
				size := 2
				if e == 'u' {
					size = 4
				}
				if p.i+size < len(p.s) {
					if r, err := strconv.ParseUint(p.s[p.i+1:p.i+1+size], 16, 32); err == nil {
						b.WriteRune(rune(r))
						p.i += size
						break
					}
				}
				b.WriteByte(e)
			default:
				b.WriteByte(e)
			}
			p.i++
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", fmt.Errorf("unterminated string starting at offset %d", start)
}
