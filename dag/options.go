package dag

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// operatorOptions checks a task's options against its operator's schema:
// known key, kind, templates, the option's own Check, then the schema's
// Validate across options.
func (f *fileParser) operatorOptions(t *parsedTask, m *yaml.Node, schema *OperatorSchema, options []entry, expanded map[string]bool) {
	valid := true
	given := map[string]bool{}
	for _, e := range options {
		key := e.name()
		opt, ok := schema.Option(key)
		if !ok {
			candidates := append(append([]string{}, taskOwnKeys...), schema.optionNames()...)
			f.errorf(e.key, "%s: unknown key for operator %s%s", key, schema.Name, didYouMean(key, candidates))
			t.Options[key] = f.plain(key, e.value)
			valid = false
			continue
		}
		given[key] = true
		if !f.optionKind(key, opt, e.value) {
			t.Options[key] = f.plain(key, e.value)
			valid = false
			continue
		}
		t.Options[key] = f.optionValue(key, opt.Kind, e.value)
		if opt.Templated && !f.templates(key, e.value, t.Task) {
			valid = false
		}
		if opt.Check != nil {
			before := len(f.errs)
			f.addErrors(resolve(e.value), opt.Check(resolve(e.value)))
			valid = valid && len(f.errs) == before
		}
	}
	for _, opt := range schema.Options {
		if opt.Required && !given[opt.Name] && !expanded[opt.Name] && !expanded["*"] {
			f.errorf(m, "%s: required key is missing (operator %s)", opt.Name, schema.Name)
			valid = false
		}
	}
	if valid && schema.Validate != nil && len(expanded) == 0 {
		f.addErrors(m, schema.Validate(t.Task))
	}
}

// optionNames lists the schema's option names.
func (s *OperatorSchema) optionNames() []string {
	names := make([]string, len(s.Options))
	for i, o := range s.Options {
		names[i] = o.Name
	}
	return names
}

// optionKind checks an option's value against its declared kind; null is
// accepted for options that are not required.
func (f *fileParser) optionKind(key string, opt Option, n *yaml.Node) bool {
	r := resolve(n)
	if isNull(r) {
		if opt.Required && opt.Kind != KindAny {
			f.wrongType(key, n, opt.Kind.String())
			return false
		}
		return true
	}
	switch opt.Kind {
	case KindString:
		return f.want(key, n, isText(r), opt.Kind)
	case KindInt:
		return f.want(key, n, isInt(r), opt.Kind)
	case KindBool:
		return f.want(key, n, r.Kind == yaml.ScalarNode && r.ShortTag() == "!!bool", opt.Kind)
	case KindDuration:
		_, ok := f.duration(key, n)
		return ok
	case KindList:
		return f.want(key, n, r.Kind == yaml.SequenceNode, opt.Kind)
	case KindMap:
		return f.want(key, n, r.Kind == yaml.MappingNode, opt.Kind)
	case KindStringList:
		if !f.want(key, n, r.Kind == yaml.SequenceNode, opt.Kind) {
			return false
		}
		ok := true
		for i, item := range r.Content {
			ok = f.want(fmt.Sprintf("%s[%d]", key, i), item, isText(resolve(item)), KindString) && ok
		}
		return ok
	case KindStringMap:
		if !f.want(key, n, r.Kind == yaml.MappingNode, opt.Kind) {
			return false
		}
		ok := true
		for _, e := range f.entries(r) {
			ok = f.want(key+"."+e.name(), e.value, isText(resolve(e.value)), KindString) && ok
		}
		return ok
	case KindIntList:
		if r.Kind != yaml.SequenceNode {
			return f.want(key, n, isInt(r), opt.Kind)
		}
		ok := true
		for i, item := range r.Content {
			ok = f.want(fmt.Sprintf("%s[%d]", key, i), item, isInt(resolve(item)), KindInt) && ok
		}
		return ok
	}
	return true
}

// want reports a wrong type unless ok.
func (f *fileParser) want(key string, n *yaml.Node, ok bool, kind Kind) bool {
	if !ok {
		f.wrongType(key, n, kind.String())
	}
	return ok
}

// optionValue is the plain value of a checked option; text kinds keep
// numbers as the text written.
func (f *fileParser) optionValue(key string, kind Kind, n *yaml.Node) any {
	r := resolve(n)
	if isNull(r) {
		return nil
	}
	switch kind {
	case KindString:
		return r.Value
	case KindStringList:
		out := make([]any, len(r.Content))
		for i, item := range r.Content {
			out[i] = resolve(item).Value
		}
		return out
	case KindStringMap:
		es := f.entries(r)
		out := make(map[string]any, len(es))
		for _, e := range es {
			out[e.name()] = resolve(e.value).Value
		}
		return out
	}
	return f.plain(key, r)
}
