package dag

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/podflow/podflow/internal/templating"
)

// Mapping is how a mapped task expands into instances (Airflow's dynamic
// task mapping): over Expand (one instance per combination of the lists,
// the first key varying slowest, as itertools.product) or over Kwargs (one
// instance per object of the list, its keys being options). Options not
// expanded are shared by every instance.
type Mapping struct {
	Expand []ExpandArg // in file order; empty when Kwargs is set
	Kwargs *ExpandArg  // expand_kwargs; Option is ""
	// IndexTemplate (map_index_template) names each instance for display.
	IndexTemplate string
}

// ExpandArg is one list to map over: a literal list, or a template that
// renders to one when the task's upstreams are done.
type ExpandArg struct {
	Option   string
	Literal  []any // the list as written; nil when Template is set
	Template string
}

// Mapped reports whether the task expands into instances.
func (t *Task) Mapped() bool { return t.Map != nil }

// mappingKeys are the task keys of mapping and its throttles.
var mappingKeys = []string{"expand", "expand_kwargs", "map_index_template", "max_active_tis_per_dag", "max_active_tis_per_dagrun"}

// mappingFields reads the mapping keys of a task, checking expanded options
// against the operator's schema (nil when the operator is unknown).
func (f *fileParser) mappingFields(t *parsedTask, schema *OperatorSchema, fields map[string]entry) {
	for _, key := range []string{"max_active_tis_per_dag", "max_active_tis_per_dagrun"} {
		e, ok := fields[key]
		if !ok || isNull(e.value) {
			continue
		}
		v, ok := f.integer(key, e.value)
		if ok && v < 1 {
			f.errorf(e.value, "%s: wants 1 or more, got %d", key, v)
			continue
		}
		if key == "max_active_tis_per_dag" {
			t.MaxActiveTIsPerDag = v
		} else {
			t.MaxActiveTIsPerDagrun = v
		}
	}
	ex, hasExpand := fields["expand"]
	kw, hasKwargs := fields["expand_kwargs"]
	mit, hasTemplate := fields["map_index_template"]
	if !hasExpand && !hasKwargs {
		if hasTemplate {
			f.errorf(mit.key, "map_index_template: only a mapped task (expand or expand_kwargs) has instances to name")
		}
		return
	}
	if hasExpand && hasKwargs {
		f.errorf(kw.key, "expand_kwargs: a task maps over expand or expand_kwargs, not both")
		return
	}
	m := &Mapping{}
	if hasTemplate && !isNull(mit.value) {
		if s, ok := f.str("map_index_template", mit.value); ok {
			m.IndexTemplate = s
			if templating.IsTemplate(s) {
				f.templates("map_index_template", mit.value, t.Task)
			}
		}
	}
	if hasExpand {
		f.expand(t, schema, ex.value, m)
	} else {
		m.Kwargs = f.expandKwargs(t, schema, kw.value)
	}
	t.Map = m
}

// expand reads `expand: {option: list or template}`.
func (f *fileParser) expand(t *parsedTask, schema *OperatorSchema, n *yaml.Node, m *Mapping) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.MappingNode {
		f.wrongType("expand", n, "a mapping of option → list (or a template rendering a list)")
		return
	}
	es := f.entries(r)
	if len(es) == 0 {
		f.errorf(n, "expand: wants at least one option to map over")
		return
	}
	for _, e := range es {
		key := "expand." + e.name()
		opt, ok := f.expandedOption(t, schema, e.key, e.name(), key)
		if !ok {
			continue
		}
		v := resolve(e.value)
		switch {
		case v != nil && v.Kind == yaml.SequenceNode:
			for i, item := range v.Content {
				ik := fmt.Sprintf("%s[%d]", key, i)
				if f.optionKind(ik, opt, item) && opt.Templated {
					f.templates(ik, item, t.Task)
				}
			}
			list, _ := f.plain(key, v).([]any)
			if list == nil {
				list = []any{}
			}
			m.Expand = append(m.Expand, ExpandArg{Option: e.name(), Literal: list})
		case isText(v) && templating.IsTemplate(v.Value):
			if f.templates(key, v, t.Task) {
				m.Expand = append(m.Expand, ExpandArg{Option: e.name(), Template: v.Value})
			}
		default:
			f.wrongType(key, e.value, "a list, or a template that renders one (\"{{ … }}\")")
		}
	}
}

// expandKwargs reads `expand_kwargs: [{option: value}, …]` or a template.
func (f *fileParser) expandKwargs(t *parsedTask, schema *OperatorSchema, n *yaml.Node) *ExpandArg {
	v := resolve(n)
	if isText(v) && templating.IsTemplate(v.Value) {
		if f.templates("expand_kwargs", v, t.Task) {
			return &ExpandArg{Template: v.Value}
		}
		return nil
	}
	if v == nil || v.Kind != yaml.SequenceNode {
		f.wrongType("expand_kwargs", n, "a list of mappings of options, or a template that renders one")
		return nil
	}
	for i, item := range v.Content {
		ri := resolve(item)
		ik := fmt.Sprintf("expand_kwargs[%d]", i)
		if ri == nil || ri.Kind != yaml.MappingNode {
			f.wrongType(ik, item, "a mapping of options")
			continue
		}
		for _, e := range f.entries(ri) {
			if opt, ok := f.expandedOption(t, schema, e.key, e.name(), ik+"."+e.name()); ok {
				if f.optionKind(ik+"."+e.name(), opt, e.value) && opt.Templated {
					f.templates(ik+"."+e.name(), e.value, t.Task)
				}
			}
		}
	}
	list, _ := f.plain("expand_kwargs", v).([]any)
	if list == nil {
		list = []any{}
	}
	return &ExpandArg{Literal: list}
}

// expandedOption checks that option name may vary per instance: an option
// of the task's operator, not a task setting, not also given directly.
func (f *fileParser) expandedOption(t *parsedTask, schema *OperatorSchema, at *yaml.Node, name, key string) (Option, bool) {
	if contains(taskKeys, name) || contains(mappingKeys, name) {
		f.errorf(at, "%s: %s cannot vary per mapped instance (task settings are shared by all instances); map over an option of the operator", key, name)
		return Option{}, false
	}
	if schema == nil {
		return Option{Name: name, Kind: KindAny}, true
	}
	opt, ok := schema.Option(name)
	if !ok {
		f.errorf(at, "%s: unknown option %s for operator %s%s", key, quoteShort(name), schema.Name, didYouMean(name, schema.optionNames()))
		return Option{}, false
	}
	if _, direct := t.Nodes[name]; direct {
		f.errorf(at, "%s: option %s is also given directly on the task; give it in one place", key, name)
		return Option{}, false
	}
	return opt, true
}

// expandedNames are the options a mapped task's instances receive, which
// count as given for the schema's required options.
func expandedNames(fields map[string]entry, f *fileParser) map[string]bool {
	out := map[string]bool{}
	if e, ok := fields["expand"]; ok {
		if r := resolve(e.value); r != nil && r.Kind == yaml.MappingNode {
			for _, x := range f.entries(r) {
				out[x.name()] = true
			}
		}
	}
	if _, ok := fields["expand_kwargs"]; ok {
		out["*"] = true // any option may come from the objects
	}
	return out
}
