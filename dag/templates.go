package dag

import (
	"errors"
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/podflow/podflow/internal/templating"
)

// templates parses every template string inside a templated option's value
// (nested in lists and mappings too) and reports those that do not parse,
// at their position in the file. It returns whether all parsed.
func (f *fileParser) templates(key string, n *yaml.Node, t *Task) bool {
	return f.templatesDepth(key, n, t, 0)
}

func (f *fileParser) templatesDepth(key string, n *yaml.Node, t *Task, depth int) bool {
	r := resolve(n)
	if r == nil || depth > maxNodeDepth || f.templateBudget < 0 {
		return true // the plain value's walk reports the nesting
	}
	f.templateBudget--
	if f.templateBudget < 0 {
		f.errorf(n, "%s: the file holds more than %d strings to check for templates (aliases of aliases?)", key, maxPlainValues)
		return false
	}
	switch r.Kind {
	case yaml.ScalarNode:
		if r.ShortTag() != "!!str" || !templating.IsTemplate(r.Value) {
			return true
		}
		return f.template(key, r, t)
	case yaml.SequenceNode:
		ok := true
		for i, item := range r.Content {
			ok = f.templatesDepth(fmt.Sprintf("%s[%d]", key, i), item, t, depth+1) && ok
		}
		return ok
	case yaml.MappingNode:
		ok := true
		for _, e := range f.entries(r) {
			ok = f.templatesDepth(key+"."+e.name(), e.value, t, depth+1) && ok
		}
		return ok
	}
	return true
}

// template parses one template string and, unless the task turned it off
// (check_templates: false), checks the names it reads.
func (f *fileParser) template(key string, n *yaml.Node, t *Task) (ok bool) {
	defer func() {
		// A template engine bug must not take the parser down with it.
		if r := recover(); r != nil {
			f.errorf(n, "%s: template does not parse: the template engine failed: %v", key, r)
			ok = false
		}
	}()
	tpl, err := f.p.templates.Compile(n.Value)
	if err == nil {
		if !t.CheckTemplates {
			return true
		}
		problems := tpl.Check(f.params)
		for _, p := range problems {
			line, col := f.src.scalarPosition(n, p.Line, p.Column)
			f.errorAt(line, col, "%s: %s (check_templates: false turns this check off for a task that builds names at run time)", key, p.Msg)
		}
		return len(problems) == 0
	}
	line, col := n.Line, n.Column
	msg := err.Error()
	var syntax *templating.SyntaxError
	if errors.As(err, &syntax) {
		line, col = f.src.scalarPosition(n, syntax.Line, syntax.Column)
		if syntax.Msg != "" {
			msg = syntax.Msg
		}
	}
	f.errorAt(line, col, "%s: template does not parse: %s", key, msg)
	return false
}

// WalkStrings returns a copy of v with fn applied to every string in it,
// also inside lists and mappings (the plain values of Task.Options:
// []any, map[string]any, and []string, map[string]string). Other values
// are copied as they are. The first error is returned, naming where it
// happened ("env.HOME: …", "cmds[2]: …"). Mappings are walked in key order
// so the error is deterministic.
func WalkStrings(v any, fn func(s string) (string, error)) (any, error) {
	return walkStrings("", v, fn)
}

func walkStrings(at string, v any, fn func(string) (string, error)) (any, error) {
	switch x := v.(type) {
	case string:
		s, err := fn(x)
		if err != nil {
			if at == "" {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		return s, nil
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			r, err := walkStrings(fmt.Sprintf("%s[%d]", at, i), item, fn)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case []string:
		out := make([]string, len(x))
		for i, item := range x {
			r, err := walkStrings(fmt.Sprintf("%s[%d]", at, i), item, fn)
			if err != nil {
				return nil, err
			}
			out[i] = r.(string)
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			r, err := walkStrings(joinKey(at, k), x[k], fn)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case map[string]string:
		out := make(map[string]string, len(x))
		for _, k := range sortedKeys(x) {
			r, err := walkStrings(joinKey(at, k), x[k], fn)
			if err != nil {
				return nil, err
			}
			out[k] = r.(string)
		}
		return out, nil
	}
	return v, nil
}

func joinKey(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
