package templating

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unsafe"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// filterNames lists the filters of the sandbox (gonja's FilterSet cannot be
// enumerated): each is wrapped by budgetedFilter.
var filterNames = []string{
	"abs", "attr", "batch", "capitalize", "center", "default", "d", "dictsort", "e", "escape",
	"filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "join",
	"items", "last", "length", "count", "list", "lower", "map", "max", "min", "pprint", "random",
	"rejectattr", "reject", "replace", "reverse", "round", "safe", "selectattr", "select", "slice",
	"sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique", "upper",
	"urlencode", "urlize", "wordcount", "wordwrap", "xmlattr", "shell_quote", "fromjson",
}

// growthFilters can build a result much larger than their input; their
// bound is checkGrowth's. The others build at most expansion × their input.
var growthFilters = map[string]bool{
	"center": true, "format": true, "indent": true, "join": true, "replace": true,
	"truncate": true, "wordwrap": true, "urlize": true,
}

// expansion is how much larger than its input a filter's result can be.
var expansion = map[string]float64{
	"tojson": 6, "e": 5, "escape": 5, "forceescape": 5, "urlencode": 3, "xmlattr": 6,
	"shell_quote": 4, "fromjson": 8, "title": 2, "upper": 2, "lower": 2, "capitalize": 2, "string": 1, "list": 2,
}

// budgetedFilter checks, before calling the filter, that the largest
// result it can build fits in the render's budget, and charges the result.
func budgetedFilter(name string, inner exec.FilterFunction) exec.FilterFunction {
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		st := stateFrom(e)
		if st == nil || in.IsError() {
			return inner(e, in, params)
		}
		if err := st.checkCall("filter "+name, growthFilters[name], expansion[name], in, params); err != nil {
			return exec.AsValue(st.failFunc(err))
		}
		out := inner(e, in, params)
		if err := st.chargeResult("filter "+name, in, out); err != nil {
			return exec.AsValue(st.failFunc(err))
		}
		return out
	}
}

// checkCall refuses a filter or method call whose result could exceed the
// render budget: growth calls by checkGrowth's bound, the others by
// expansion × the size of input and arguments.
func (st *renderState) checkCall(what string, growth bool, factor float64, in *exec.Value, params *exec.VarArgs) error {
	if growth {
		return st.check(growthBoundOf(what[strings.LastIndexByte(what, ' ')+1:], in, params), what)
	}
	limit := float64(st.left)
	size := sizeOf(in, limit)
	for _, a := range params.Args {
		size += sizeOf(a, limit)
	}
	for _, a := range params.KwArgs {
		size += sizeOf(a, limit)
	}
	if math.IsInf(size, 1) {
		return &budgetError{what: fmt.Sprintf("%s: value nested deeper than %d levels", what, maxRenderValueDepth)}
	}
	return st.check(max(factor, 1)*size, what)
}

// chargeResult charges what a call built; a result that is the input
// itself (safe, default, first, trim of a trimmed string) built nothing.
func (st *renderState) chargeResult(what string, in, out *exec.Value) error {
	if out == nil || out.IsError() {
		return nil
	}
	if in != nil && in.IsString() && out.IsString() {
		a, b := in.String(), out.String()
		if len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b) {
			return nil
		}
	}
	return st.charge(resultSize(out), what+" result")
}

// filterPPrint is pprint as gonja gives it (indented JSON), with its size
// computed and charged before the indented text is built: indenting grows
// with the square of the nesting depth.
func filterPPrint(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) > 0 || len(params.KwArgs) > 1 {
		return exec.AsValue(exec.ErrInvalidCall(errors.New("pprint takes no arguments but verbose")))
	}
	st := stateFrom(e)
	compact, err := json.Marshal(in.Interface())
	if err != nil {
		return exec.AsValue(fmt.Errorf("pprint: %w", err))
	}
	if st != nil {
		if err := st.charge(float64(indentedSize(compact)), "filter pprint result"); err != nil {
			return exec.AsValue(st.failFunc(err))
		}
	}
	var b bytes.Buffer
	if err := json.Indent(&b, compact, "", "  "); err != nil {
		return exec.AsValue(fmt.Errorf("pprint: %w", err))
	}
	return exec.AsSafeValue(b.String())
}

// indentedSize is len of json.Indent(compact, "", "  ") without building it.
func indentedSize(compact []byte) int {
	size, depth := 0, 0
	inString, escaped := false, false
	for i, c := range compact {
		size++
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if i+1 < len(compact) && (compact[i+1] == '}' || compact[i+1] == ']') {
				continue // empty: json.Indent keeps {} and [] together
			}
			depth++
			size += 1 + 2*depth
		case '}', ']':
			if i > 0 && (compact[i-1] == '{' || compact[i-1] == '[') {
				continue
			}
			depth--
			size += 1 + 2*depth
		case ',':
			size += 1 + 2*depth
		case ':':
			size++
		}
	}
	return size
}

// printfVerbRe finds printf verbs with their flags.
var printfVerbRe = regexp.MustCompile(`%[-+# 0]*(\[\d+\])?(\d+|\*)?(\.(\d+|\*)?)?(\[\d+\])?[a-zA-Z%]`)

// checkFormatVerbs refuses the printf verbs that show Go internals: %T
// (type names), %p (addresses) and %#v (Go syntax, with addresses).
func checkFormatVerbs(format string) error {
	for _, verb := range printfVerbRe.FindAllString(format, -1) {
		switch last := verb[len(verb)-1]; {
		case last == 'T' || last == 'p':
			return fmt.Errorf("format: %s is not allowed in podflow templates", verb)
		case last == 'v' && strings.Contains(verb, "#"):
			return fmt.Errorf("format: %s is not allowed in podflow templates", verb)
		}
	}
	return nil
}

// plainArgs turns format's arguments into values whose %v shows no Go type
// names or addresses: strings, numbers, booleans, nil; anything else as the
// text {{ }} would print for it.
func plainArgs(params *exec.VarArgs) *exec.VarArgs {
	out := &exec.VarArgs{KwArgs: params.KwArgs}
	for _, a := range params.Args {
		switch a.Interface().(type) {
		case nil, string, bool, int, int64, float64:
			out.Args = append(out.Args, a)
		default:
			out.Args = append(out.Args, exec.AsValue(printed(a)))
		}
	}
	return out
}
