package templating

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// decodeXComJSON decodes an XCom's JSON into template values: integers stay
// int64 (so 1 renders "1", never "1.0"), other numbers become float64,
// objects pyDict, arrays pyList.
//
// XCom values are mostly small and plain, and decoding sits on the render
// path, so a small parser handles the common shapes without the
// encoding/json Decoder's allocations; anything it is not sure about
// (escapes in strings, unusual numbers, malformed input) goes to
// encoding/json with UseNumber, which also produces the error messages.
func decodeXComJSON(data []byte) (any, error) {
	p := jsonParser{data: data}
	p.space()
	v, ok := p.value(0)
	p.space()
	if ok && p.pos == len(p.data) {
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var std any
	if err := dec.Decode(&std); err != nil {
		return nil, fmt.Errorf("decode XCom JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decode XCom JSON: trailing data after the value")
	}
	return toPython(std), nil
}

type jsonParser struct {
	data []byte
	pos  int
}

const maxFastJSONDepth = 64

func (p *jsonParser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value parses one value; ok=false means "let encoding/json decide".
func (p *jsonParser) value(depth int) (any, bool) {
	if p.pos >= len(p.data) || depth > maxFastJSONDepth {
		return nil, false
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return p.literal()
	}
}

func (p *jsonParser) literal() (any, bool) {
	for _, lit := range []struct {
		text string
		v    any
	}{{"true", true}, {"false", false}, {"null", nil}} {
		if bytes.HasPrefix(p.data[p.pos:], []byte(lit.text)) {
			p.pos += len(lit.text)
			return lit.v, true
		}
	}
	return nil, false
}

func (p *jsonParser) str() (string, bool) {
	start := p.pos + 1
	for i := start; i < len(p.data); i++ {
		switch c := p.data[i]; {
		case c == '"':
			if !utf8.Valid(p.data[start:i]) {
				return "", false
			}
			p.pos = i + 1
			return string(p.data[start:i]), true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

// number accepts JSON's grammar -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *jsonParser) number() (any, bool) {
	d, i := p.data, p.pos
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(d) && d[i] == '-' {
		i++
	}
	intStart := i
	if n := digits(); n == 0 || (n > 1 && d[intStart] == '0') {
		return nil, false
	}
	isFloat := false
	if i < len(d) && d[i] == '.' {
		i++
		isFloat = true
		if digits() == 0 {
			return nil, false
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		isFloat = true
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	text := string(d[p.pos:i])
	if !isFloat {
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, false
		}
		p.pos = i
		return n, true
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, false
	}
	p.pos = i
	return f, true
}

func (p *jsonParser) array(depth int) (any, bool) {
	p.pos++
	list := pyList{}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return list, true
	}
	for {
		p.space()
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		list = append(list, v)
		p.space()
		if p.pos >= len(p.data) {
			return nil, false
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return list, true
		default:
			return nil, false
		}
	}
}

func (p *jsonParser) object(depth int) (any, bool) {
	p.pos++
	obj := pyDict{}
	p.space()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return obj, true
	}
	for {
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, false
		}
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.space()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, false
		}
		p.pos++
		p.space()
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		obj[key] = v
		p.space()
		if p.pos >= len(p.data) {
			return nil, false
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return obj, true
		default:
			return nil, false
		}
	}
}
