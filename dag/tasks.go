package dag

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// taskSettingKeys are the task settings default_args may give for every
// task; a task's own value wins.
var taskSettingKeys = []string{"retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay",
	"execution_timeout", "trigger_rule", "pool", "priority_weight", "owner", "check_templates",
	"on_failure_callback", "on_retry_callback", "on_success_callback", "on_execute_callback", "on_skipped_callback"}

// taskKeys are the keys every task may have whatever its operator.
var taskKeys = append([]string{"task_id", "operator", "upstream", "outlets"}, taskSettingKeys...)

// taskOwnKeys are the keys a task may have besides its operator's options.
var taskOwnKeys = append(append([]string{}, taskKeys...), mappingKeys...)

// parsedTask is a task with the nodes later checks point at.
type parsedTask struct {
	*Task
	index    int
	idNode   *yaml.Node
	upstream []edge // as declared, before ids are checked
}

// declaredIDs records where each task id was first declared, to report
// duplicates across the file's task lists (top level and groups).
type declaredIDs map[string]int

// edge is one declared dependency: task up runs before the task holding it.
type edge struct {
	up        string
	key       string // "upstream" or "dependencies", for messages
	line, col int    // where it was declared
}

// defaultArgs reads default_args into the task every task starts from.
func (f *fileParser) defaultArgs(fields map[string]entry) *Task {
	base := &Task{
		TriggerRule:    DefaultTriggerRule,
		RetryDelay:     DefaultRetryDelay,
		Pool:           DefaultPool,
		PriorityWeight: DefaultPriorityWeight,
		CheckTemplates: true,
	}
	e, ok := fields["default_args"]
	if !ok {
		return base
	}
	f.applyDefaultArgs(base, e.value)
	return base
}

// applyDefaultArgs applies a default_args mapping to base.
func (f *fileParser) applyDefaultArgs(base *Task, n *yaml.Node) {
	if isNull(n) {
		return
	}
	if r := resolve(n); r == nil || r.Kind != yaml.MappingNode {
		f.wrongType("default_args", n, KindMap.String())
		return
	}
	for _, s := range f.entries(n) {
		if !contains(taskSettingKeys, s.name()) {
			f.errorf(s.key, "%s: unknown key in default_args%s", s.name(), didYouMean(s.name(), taskSettingKeys))
			continue
		}
		f.taskSetting(base, s)
	}
}

// taskSetting applies one of taskSettingKeys to t.
func (f *fileParser) taskSetting(t *Task, e entry) {
	key, n := e.name(), e.value
	switch key {
	case "retries":
		if v, ok := f.integer(key, n); ok && v < 0 {
			f.errorf(n, "%s: wants 0 or more, got %d", key, v)
		} else if ok {
			t.Retries = v
		}
	case "retry_delay":
		if v, ok := f.duration(key, n); ok {
			t.RetryDelay = v
		}
	case "retry_exponential_backoff":
		if v, ok := f.boolean(key, n); ok {
			t.RetryExponentialBackoff = v
		}
	case "max_retry_delay":
		if v, ok := f.duration(key, n); ok {
			t.MaxRetryDelay = v
		}
	case "execution_timeout":
		if isNull(n) {
			t.ExecutionTimeout = 0
		} else if v, ok := f.duration(key, n); ok {
			t.ExecutionTimeout = v
		}
	case "trigger_rule":
		if v, ok := f.triggerRule(n); ok {
			t.TriggerRule = v
		}
	case "pool":
		if v, ok := f.str(key, n); ok && v == "" {
			f.errorf(n, "pool: wants a pool name, got an empty string")
		} else if ok {
			t.Pool = v
		}
	case "priority_weight":
		if v, ok := f.integer(key, n); ok {
			t.PriorityWeight = v
		}
	case "owner":
		if !isNull(n) {
			t.Owner, _ = f.str(key, n)
		}
	case "check_templates":
		if v, ok := f.boolean(key, n); ok {
			t.CheckTemplates = v
		}
	default:
		if event, ok := taskCallbackKeys[key]; ok {
			if list, ok := f.callbackList(key, n); ok {
				t.Callbacks = t.Callbacks.with(event, list)
			}
		}
	}
}

// triggerRule reads a trigger rule.
func (f *fileParser) triggerRule(n *yaml.Node) (TriggerRule, bool) {
	s, ok := f.str("trigger_rule", n)
	if !ok {
		return "", false
	}
	names := make([]string, len(TriggerRules))
	for i, r := range TriggerRules {
		if TriggerRule(s) == r {
			return r, true
		}
		names[i] = string(r)
	}
	hint := didYouMean(s, names)
	if hint == "" {
		hint = "; use one of " + strings.Join(names, ", ")
	}
	f.errorf(n, "trigger_rule: unknown trigger rule %s%s", quoteShort(s), hint)
	return "", false
}

// tasks reads the top-level task list; it may be left out when the file
// has task_groups.
func (f *fileParser) tasks(root *yaml.Node, fields map[string]entry, defaults *Task, seen declaredIDs) []*parsedTask {
	e, ok := fields["tasks"]
	if !ok {
		if _, grouped := fields["task_groups"]; !grouped {
			f.required(root, fields, "tasks")
		}
		return nil
	}
	list := resolve(e.value)
	if list == nil || list.Kind != yaml.SequenceNode {
		f.wrongType("tasks", e.value, "a list of tasks")
		return nil
	}
	if _, grouped := fields["task_groups"]; len(list.Content) == 0 && !grouped {
		f.errorf(e.value, "tasks: wants at least one task")
		return nil
	}
	return f.taskList(list, defaults, nil, seen, nil)
}

// taskList reads a list of task mappings, in group g (nil: top level),
// appending to out.
func (f *fileParser) taskList(list *yaml.Node, defaults *Task, g *groupInfo, seen declaredIDs, out []*parsedTask) []*parsedTask {
	for i, item := range list.Content {
		r := resolve(item)
		if r == nil || r.Kind != yaml.MappingNode {
			f.wrongType(fmt.Sprintf("tasks[%d]", i), item, "a task (a mapping with task_id and operator)")
			continue
		}
		t := f.task(r, defaults)
		if g != nil {
			t.Group = g.ID
			if t.ID != "" {
				t.ID = g.ID + "." + t.ID
			}
		}
		t.index = len(out)
		if t.ID != "" {
			if line, dup := seen[t.ID]; dup {
				f.errorf(t.idNode, "task_id: duplicate task id %q (first at line %d)", t.ID, line)
				continue
			}
			seen[t.ID] = t.idNode.Line
		}
		out = append(out, t)
	}
	return out
}

// task reads one task mapping.
func (f *fileParser) task(m *yaml.Node, defaults *Task) *parsedTask {
	copied := *defaults
	t := &parsedTask{Task: &copied}
	t.Line, t.Column = m.Line, m.Column
	t.Options = map[string]any{}
	t.Nodes = map[string]*yaml.Node{}
	var options []entry
	fields := map[string]entry{}
	for _, e := range f.entries(m) {
		key := e.name()
		switch {
		case key == "task_id":
			t.idNode = e.value
			t.ID, _ = f.identifier(key, e.value)
		case key == "operator":
			t.Operator, _ = f.str(key, e.value)
		case key == "upstream":
			t.upstream = append(t.upstream, f.upstreamList(e.value)...)
		case key == "outlets":
			f.outlets(t.Task, e.value)
		case contains(taskSettingKeys, key):
			f.taskSetting(t.Task, e)
		case contains(mappingKeys, key):
			// read with the operator's schema, below
		default:
			options = append(options, e)
		}
		fields[key] = e
	}
	f.required(m, fields, "task_id")
	opEntry, hasOp := f.required(m, fields, "operator")
	for _, e := range options {
		t.Nodes[e.name()] = resolve(e.value)
	}
	if !hasOp || t.Operator == "" {
		f.keepOptions(t, options)
		f.mappingFields(t, nil, fields)
		return t
	}
	schema, known := f.p.lookup(t.Operator)
	if !known {
		names := f.p.operatorNames()
		hint := didYouMean(t.Operator, names)
		if hint == "" && len(names) > 0 {
			hint = "; known operators: " + strings.Join(names, ", ")
		}
		f.errorf(opEntry.value, "operator: unknown operator %s%s", quoteShort(t.Operator), hint)
		f.keepOptions(t, options)
		return t
	}
	f.operatorOptions(t, m, schema, options, expandedNames(fields, f))
	f.mappingFields(t, schema, fields)
	return t
}

// keepOptions stores options as plain values when no schema applies.
func (f *fileParser) keepOptions(t *parsedTask, options []entry) {
	for _, e := range options {
		t.Options[e.name()] = f.plain(e.name(), e.value)
	}
}

// upstreamList reads a task's upstream: a list of task ids, or one id.
func (f *fileParser) upstreamList(n *yaml.Node) []edge {
	r := resolve(n)
	if isNull(r) {
		return nil
	}
	if isText(r) {
		return []edge{{up: r.Value, key: "upstream", line: n.Line, col: n.Column}}
	}
	if r.Kind != yaml.SequenceNode {
		f.wrongType("upstream", n, "a list of task ids")
		return nil
	}
	var out []edge
	for _, item := range r.Content {
		ri := resolve(item)
		if !isText(ri) {
			f.wrongType("upstream", item, "a task id")
			continue
		}
		out = append(out, edge{up: ri.Value, key: "upstream", line: item.Line, col: item.Column})
	}
	return out
}

// lookup finds an operator's schema.
func (p *Parser) lookup(name string) (*OperatorSchema, bool) {
	if p.Registry == nil || p.Registry.schemas == nil {
		return nil, false
	}
	s, ok := p.Registry.Lookup(name)
	return s, ok && s != nil
}

// operatorNames lists the known operators.
func (p *Parser) operatorNames() []string {
	if p.Registry == nil {
		return nil
	}
	return p.Registry.Names()
}
