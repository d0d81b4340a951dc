package templating

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Values a template can see. gonja falls back to reflection
// (reflect.Value.MethodByName, FieldByName) for attribute access on any Go
// value that does not implement exec.AttributeGetter. Every non-scalar value
// we hand to gonja therefore either has no Go methods at all, or implements
// GetAttribute itself and answers only from its own attribute map — so no Go
// method of ours is ever reachable from a template.

// pyDict is a JSON object as Python sees it: renders like a Python dict,
// attributes are its keys.
type pyDict map[string]any

func (d pyDict) GetAttribute(name string) (*exec.Value, bool) {
	v, ok := d[name]
	if !ok {
		return exec.AsValue(nil), false
	}
	return exec.ToValue(v), true
}

func (d pyDict) String() string { return pyRepr(d) }

// pyList is a JSON array as Python sees it; renders like a Python list.
type pyList []any

func (l pyList) GetAttribute(string) (*exec.Value, bool) { return exec.AsValue(nil), false }
func (l pyList) String() string                          { return pyRepr(l) }

// pyObject is an Airflow object (dag, task, dag_run, ti, macros): a display
// string plus a fixed map of attributes, some of them functions.
type pyObject struct {
	str   string
	attrs map[string]any
}

func (o *pyObject) GetAttribute(name string) (*exec.Value, bool) {
	v, ok := o.attrs[name]
	if !ok {
		return exec.AsValue(nil), false
	}
	return exec.ToValue(v), true
}

// GetItem answers nothing so that gonja falls back to GetAttribute, as Jinja
// does for obj['attr'].
func (o *pyObject) GetItem(any) (*exec.Value, bool) { return exec.AsValue(nil), false }
func (o *pyObject) String() string                  { return o.str }

// pyFunc is the one function signature exposed to templates; gonja calls it
// with the evaluated positional and keyword arguments.
type pyFunc = func(args *exec.VarArgs) (any, error)

// toPython converts a Go or JSON-decoded value into what templates see:
// pyDict, pyList, string, bool, int64, float64, *pyDatetime or nil. Values of
// any other Go type never reach gonja (they would expose their methods).
func toPython(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int64, float64, *pyDatetime:
		return x
	case int:
		return int64(x)
	case json.Number:
		return jsonNumber(x)
	case map[string]any:
		d := make(pyDict, len(x))
		for k, e := range x {
			d[k] = toPython(e)
		}
		return d
	case []any:
		l := make(pyList, len(x))
		for i, e := range x {
			l[i] = toPython(e)
		}
		return l
	case time.Time:
		return newPyDatetime(x)
	case pyDict, pyList, *pyObject, *taskInstance, *itemsOnly, *varValues, *connAccessor:
		return x
	case *exec.Value:
		if x == nil {
			return nil
		}
		return toPython(x.Interface())
	case exec.ValuesList:
		l := make(pyList, len(x))
		for i, e := range x {
			l[i] = toPython(e)
		}
		return l
	case *exec.Dict:
		d := make(pyDict, len(x.Pairs))
		for _, p := range x.Pairs {
			d[p.Key.String()] = toPython(p.Value)
		}
		return d
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Slice, reflect.Array:
		l := make(pyList, rv.Len())
		for i := range l {
			l[i] = toPython(rv.Index(i).Interface())
		}
		return l
	case reflect.Map:
		d := make(pyDict, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			d[fmt.Sprint(it.Key().Interface())] = toPython(it.Value().Interface())
		}
		return d
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return toPython(rv.Elem().Interface())
	case reflect.Func:
		return v // macros and our functions: no Go methods to reach
	}
	return fmt.Sprint(v)
}

// jsonNumber keeps integers integers: "1" becomes int64 1 (renders "1"),
// "1.5" becomes float64.
func jsonNumber(n json.Number) any {
	if i, err := n.Int64(); err == nil {
		return i
	}
	if f, err := n.Float64(); err == nil {
		return f
	}
	return n.String()
}

// pyRepr renders a value as Python's repr() would, which is what Jinja
// prints for values nested in lists and dicts.
func pyRepr(v any) string {
	var b strings.Builder
	writeRepr(&b, v)
	return b.String()
}

func writeRepr(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case *exec.Value:
		if x == nil {
			b.WriteString("None")
			return
		}
		writeRepr(b, x.Interface())
	case string:
		writePyString(b, x)
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case int:
		b.WriteString(strconv.Itoa(x))
	case float64:
		b.WriteString(pyFloat(x))
	case pyList:
		writeReprList(b, len(x), func(i int) any { return x[i] })
	case []any:
		writeReprList(b, len(x), func(i int) any { return x[i] })
	case exec.ValuesList:
		writeReprList(b, len(x), func(i int) any { return x[i] })
	case pyDict:
		writeReprDict(b, x)
	case map[string]any:
		writeReprDict(b, x)
	case *exec.Dict:
		b.WriteByte('{')
		for i, p := range x.Pairs {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, p.Key)
			b.WriteString(": ")
			writeRepr(b, p.Value)
		}
		b.WriteByte('}')
	case fmt.Stringer:
		b.WriteString(x.String())
	default:
		b.WriteString(exec.ToValue(v).String())
	}
}

func writeReprList(b *strings.Builder, n int, at func(int) any) {
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		writeRepr(b, at(i))
	}
	b.WriteByte(']')
}

func writeReprDict[M ~map[string]any](b *strings.Builder, m M) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		writePyString(b, k)
		b.WriteString(": ")
		writeRepr(b, m[k])
	}
	b.WriteByte('}')
}

// writePyString quotes like Python's str.__repr__: single quotes unless the
// string holds a single quote and no double quote.
func writePyString(b *strings.Builder, s string) {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(quote):
			b.WriteByte('\\')
			b.WriteByte(quote)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
}

// pyFloat formats like Python's float repr: shortest round-trip digits,
// always a decimal point, exponent only outside [1e-4, 1e16).
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	abs := math.Abs(f)
	if abs != 0 && (abs < 1e-4 || abs >= 1e16) {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		digits := strings.TrimLeft(exp[1:], "0")
		if len(digits) < 2 {
			digits = strings.Repeat("0", 2-len(digits)) + digits
		}
		return mant + "e" + string(sign) + digits
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
