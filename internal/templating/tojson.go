package templating

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// filterToJSON is Jinja's tojson as Airflow gets it: json.dumps with Python's
// default separators (", " and ": "), sorted keys, ASCII-only output and the
// HTML-safe escapes of <, >, & and '. Example: [1, 2, 3], {"a": 1}.
func filterToJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) > 0 || len(params.KwArgs) > 0 {
		// indent= is rarely used in Airflow templates; refuse rather than
		// silently ignore it.
		return exec.AsValue(exec.ErrInvalidCall(fmt.Errorf("tojson takes no arguments here")))
	}
	var b strings.Builder
	if err := writeJSON(&b, in.Interface(), 0); err != nil {
		return exec.AsValue(fmt.Errorf("tojson: %w", err))
	}
	return exec.AsSafeValue(b.String())
}

const maxJSONDepth = 100

func writeJSON(b *strings.Builder, v any, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("value nested deeper than %d levels", maxJSONDepth)
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case *exec.Value:
		if x == nil {
			b.WriteString("null")
			return nil
		}
		return writeJSON(b, x.Interface(), depth+1)
	case string:
		writeJSONString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case int:
		b.WriteString(strconv.Itoa(x))
	case float64:
		switch {
		case math.IsNaN(x):
			b.WriteString("NaN")
		case math.IsInf(x, 1):
			b.WriteString("Infinity")
		case math.IsInf(x, -1):
			b.WriteString("-Infinity")
		default:
			b.WriteString(pyFloat(x))
		}
	case pyDict:
		return writeJSONObject(b, x, depth)
	case map[string]any:
		return writeJSONObject(b, x, depth)
	case *exec.Dict:
		m := make(map[string]any, len(x.Pairs))
		for _, p := range x.Pairs {
			k, ok := jsonKey(p.Key.Interface())
			if !ok {
				return fmt.Errorf("keys must be str, int, float, bool or None, not %T", p.Key.Interface())
			}
			m[k] = p.Value
		}
		return writeJSONObject(b, m, depth)
	case *pyDatetime:
		return fmt.Errorf("object of type datetime is not JSON serializable")
	case *pyObject:
		return fmt.Errorf("object %s is not JSON serializable", x.str)
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			b.WriteByte('[')
			for i := 0; i < rv.Len(); i++ {
				if i > 0 {
					b.WriteString(", ")
				}
				if err := writeJSON(b, rv.Index(i).Interface(), depth+1); err != nil {
					return err
				}
			}
			b.WriteByte(']')
		case reflect.Map:
			m := make(map[string]any, rv.Len())
			it := rv.MapRange()
			for it.Next() {
				k, ok := jsonKey(it.Key().Interface())
				if !ok {
					return fmt.Errorf("keys must be str, int, float, bool or None, not %T", it.Key().Interface())
				}
				m[k] = it.Value().Interface()
			}
			return writeJSONObject(b, m, depth)
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			b.WriteString(strconv.FormatInt(rv.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			b.WriteString(strconv.FormatUint(rv.Uint(), 10))
		case reflect.Float32:
			return writeJSON(b, rv.Float(), depth)
		default:
			return fmt.Errorf("object of type %T is not JSON serializable", v)
		}
	}
	return nil
}

func jsonKey(k any) (string, bool) {
	switch x := k.(type) {
	case string:
		return x, true
	case nil:
		return "null", true
	case bool:
		return strconv.FormatBool(x), true
	case int, int64:
		return fmt.Sprint(x), true
	case float64:
		return pyFloat(x), true
	}
	return "", false
}

func writeJSONObject[M ~map[string]any](b *strings.Builder, m M, depth int) error {
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
		writeJSONString(b, k)
		b.WriteString(": ")
		if err := writeJSON(b, m[k], depth+1); err != nil {
			return err
		}
	}
	b.WriteByte('}')
	return nil
}

// writeJSONString escapes like json.dumps(ensure_ascii=True) followed by
// Jinja's htmlsafe replacements.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '<', '>', '&', '\'':
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			switch {
			case r < 0x20 || (r >= 0x80 && r <= 0xffff):
				fmt.Fprintf(b, `\u%04x`, r)
			case r > 0xffff:
				r1, r2 := utf16.EncodeRune(r)
				fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
			default:
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}
