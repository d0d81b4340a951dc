package kubernetes

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/internal/suggest"
	"github.com/podflow/podflow/internal/templating"
)

// The strict decoder walks a YAML node against a Go type, field by field
// following the type's json tags, the way the Kubernetes API server reads
// JSON. It turns the node into plain JSON values that encoding/json then
// decodes into the k8s.io/api type. Walking the node ourselves (instead of
// going through sigs.k8s.io/yaml, which converts to JSON first) keeps every
// error at the line and column of the offending key or value.

// nodeDecoder is implemented by option types that accept several YAML shapes
// (e.g. env_vars as a mapping or a list of EnvVar).
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string) any
}

var (
	jsonUnmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()
	nodeDecoderType = reflect.TypeOf((*nodeDecoder)(nil)).Elem()
)

// decoder collects every problem of one decode.
type decoder struct {
	// validating: template strings are accepted wherever a scalar is, since
	// their value is only known at run time.
	validating bool
	// rendered marks scalars produced by rendering a template: their text is
	// read as the field's type ("5" into an integer field).
	rendered map[*yaml.Node]bool
	errs     []*dag.Error
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &dag.Error{Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// decodeNode decodes n strictly into out (a pointer). path names the value in
// messages (e.g. "affinity").
func decodeNode(n *yaml.Node, out any, path string, d *decoder) []*dag.Error {
	if d == nil {
		d = &decoder{}
	}
	v := d.value(n, reflect.TypeOf(out).Elem(), path)
	if len(d.errs) > 0 {
		return d.errs
	}
	b, err := json.Marshal(v)
	if err == nil {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		err = dec.Decode(out)
	}
	if err != nil {
		return []*dag.Error{{Line: n.Line, Column: n.Column, Msg: fmt.Sprintf("%s: %v", path, err)}}
	}
	return nil
}

// checkNode validates n against the type of out without keeping the value.
func checkNode(n *yaml.Node, out any, path string) []*dag.Error {
	d := &decoder{validating: true}
	d.value(n, reflect.TypeOf(out).Elem(), path)
	return d.errs
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// isTemplate reports whether n is a template string left for run time.
func (d *decoder) isTemplate(n *yaml.Node) bool {
	return d.validating && n.Kind == yaml.ScalarNode && n.Tag == "!!str" && templating.IsTemplate(n.Value)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return strconv.Quote(n.Value)
	case "!!null":
		return "null"
	}
	return n.Value
}

// value converts n into a JSON value for type t, recording errors.
func (d *decoder) value(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return d.value(n.Alias, t, path)
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return d.value(n.Content[0], t, path)
	}
	if reflect.PointerTo(t).Implements(nodeDecoderType) {
		return reflect.New(t).Interface().(nodeDecoder).decodeNode(d, n, path)
	}
	if isNull(n) {
		return nil
	}
	if t.Kind() == reflect.Pointer {
		return d.value(n, t.Elem(), path)
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return d.opaque(n, t, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		return d.structValue(n, t, path)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return d.bytesValue(n, path)
		}
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "%s: wants a list, got %s", path, describe(n))
			return nil
		}
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			out = append(out, d.value(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)))
		}
		return out
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "%s: wants a mapping, got %s", path, describe(n))
			return nil
		}
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			out[k.Value] = d.value(v, t.Elem(), joinPath(path, k.Value))
		}
		return out
	case reflect.Interface:
		var v any
		if err := n.Decode(&v); err != nil {
			d.errorf(n, "%s: %v", path, err)
		}
		return v
	}
	return d.scalar(n, t, path)
}

// scalar converts a scalar node for a string, bool or number field.
func (d *decoder) scalar(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: wants %s, got %s", path, kindName(t), describe(n))
		return nil
	}
	if d.isTemplate(n) {
		return zeroJSON(t)
	}
	// Text from a rendered template is read as the field's type.
	tag := n.Tag
	if d.rendered[n] {
		tag = resolveTag(n.Value, t)
	}
	switch t.Kind() {
	case reflect.String:
		// Numbers and booleans are kept as their text, as the parser does for
		// string options.
		return n.Value
	case reflect.Bool:
		if tag == "!!bool" {
			if b, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
				return b
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if tag == "!!int" {
			if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, t.Bits()); err == nil {
				return i
			}
			d.errorf(n, "%s: %s is out of range for %s", path, n.Value, kindName(t))
			return nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if tag == "!!int" {
			if i, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, t.Bits()); err == nil {
				return i
			}
			d.errorf(n, "%s: %s is out of range for %s", path, n.Value, kindName(t))
			return nil
		}
	case reflect.Float32, reflect.Float64:
		if tag == "!!int" || tag == "!!float" {
			if f, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f
			}
		}
	}
	d.errorf(n, "%s: wants %s, got %s", path, kindName(t), describe(n))
	return nil
}

// resolveTag reads rendered text as YAML would for the field's kind.
func resolveTag(s string, t reflect.Type) string {
	s = strings.TrimSpace(s)
	switch t.Kind() {
	case reflect.Bool:
		if _, err := strconv.ParseBool(strings.ToLower(s)); err == nil {
			return "!!bool"
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseInt(s, 0, 64); err == nil {
			return "!!int"
		}
	case reflect.Float32, reflect.Float64:
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return "!!float"
		}
	}
	return "!!str"
}

func zeroJSON(t reflect.Type) any {
	switch t.Kind() {
	case reflect.Bool:
		return false
	case reflect.String:
		return ""
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return 0
	}
	return nil
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		return "a list"
	}
	return t.String()
}

// opaque handles types that read themselves from JSON (resource.Quantity,
// intstr.IntOrString, metav1.Time): the scalar is handed to their decoder.
func (d *decoder) opaque(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: wants a single value, got %s", path, describe(n))
		return nil
	}
	var v any = n.Value
	tag := n.Tag
	if d.rendered[n] {
		if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil && t.Name() == "IntOrString" {
			tag = "!!int"
		}
	}
	switch tag {
	case "!!int":
		i, err := strconv.ParseInt(n.Value, 0, 64)
		if err != nil {
			d.errorf(n, "%s: %s is out of range", path, n.Value)
			return nil
		}
		v = i
	case "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			d.errorf(n, "%s: %s is not a number", path, n.Value)
			return nil
		}
		v = f
	}
	if d.isTemplate(n) {
		return v
	}
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, reflect.New(t).Interface()); err != nil {
		d.errorf(n, "%s: invalid value %s: %v", path, describe(n), err)
		return nil
	}
	return v
}

func (d *decoder) bytesValue(n *yaml.Node, path string) any {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s: wants base64 text, got %s", path, describe(n))
		return nil
	}
	if _, err := base64.StdEncoding.DecodeString(n.Value); err != nil && !d.isTemplate(n) {
		d.errorf(n, "%s: invalid base64: %v", path, err)
		return nil
	}
	return n.Value
}

// field is one JSON-visible field of a struct.
type field struct {
	name string
	typ  reflect.Type
}

// jsonFields lists a struct's fields by JSON name, descending into inline
// and embedded structs.
func jsonFields(t reflect.Type) map[string]field {
	out := map[string]field{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := strings.Contains(","+opts+",", ",inline,") || (f.Anonymous && name == "")
		if inline {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range jsonFields(ft) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = field{name: name, typ: f.Type}
	}
	return out
}

func (d *decoder) structValue(n *yaml.Node, t reflect.Type, path string) any {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s: wants a mapping, got %s", path, describe(n))
		return nil
	}
	fields := jsonFields(t)
	out := map[string]any{}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			d.errorf(k, "%s: YAML merge keys are not supported here", path)
			continue
		}
		f, ok := fields[k.Value]
		if !ok {
			where := path
			if where == "" {
				where = "the task's options"
			}
			d.errorf(k, "unknown field %q in %s%s", k.Value, where, didYouMean(k.Value, fields))
			continue
		}
		if seen[k.Value] {
			d.errorf(k, "%s: field %q is set twice", path, k.Value)
			continue
		}
		seen[k.Value] = true
		out[k.Value] = d.value(v, f.typ, joinPath(path, k.Value))
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// didYouMean suggests the known field closest to a misspelt one.
func didYouMean(got string, fields map[string]field) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names) // ties go to the first: keep the choice stable
	best := suggest.Closest(got, names)
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
