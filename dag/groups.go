package dag

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// TaskGroup is a named set of tasks, as Airflow's TaskGroup: its tasks'
// ids start with the group's id ("transform.clean"), and a dependency on
// the group is a dependency on its roots (downstream of it: on its leaves).
// Groups nest; a group's default_args apply over the DAG's to its tasks.
type TaskGroup struct {
	ID           string // full id: "outer.inner"
	Parent       string // full id of the enclosing group; "" at the top
	Tooltip      string
	Line, Column int
}

// groupKeys are the keys a task group may have.
var groupKeys = []string{"group_id", "tooltip", "default_args", "upstream", "tasks", "task_groups"}

// groupInfo is a group while its file is parsed.
type groupInfo struct {
	*TaskGroup
	depth    int
	upstream []edge        // dependencies of the whole group, as declared
	tasks    []*parsedTask // every task inside, nested groups' included
}

// taskGroups reads task_groups and appends their tasks to tasks.
func (f *fileParser) taskGroups(d *DAG, fields map[string]entry, defaults *Task, seen declaredIDs, tasks []*parsedTask) []*parsedTask {
	e, ok := fields["task_groups"]
	if !ok || isNull(e.value) {
		return tasks
	}
	f.groups = map[string]*groupInfo{}
	tasks = f.groupList(e.value, defaults, nil, seen, tasks)
	for _, g := range f.groupOrder {
		d.Groups = append(d.Groups, g.TaskGroup)
	}
	return tasks
}

// groupList reads a list of groups inside parent (nil: top level).
func (f *fileParser) groupList(n *yaml.Node, defaults *Task, parent *groupInfo, seen declaredIDs, tasks []*parsedTask) []*parsedTask {
	list := resolve(n)
	if list == nil || list.Kind != yaml.SequenceNode {
		f.wrongType("task_groups", n, "a list of task groups")
		return tasks
	}
	for i, item := range list.Content {
		m := resolve(item)
		if m == nil || m.Kind != yaml.MappingNode {
			f.wrongType(fmt.Sprintf("task_groups[%d]", i), item, "a task group (a mapping with group_id and tasks)")
			continue
		}
		tasks = f.group(m, defaults, parent, seen, tasks)
	}
	return tasks
}

// group reads one group mapping and its tasks and nested groups.
func (f *fileParser) group(m *yaml.Node, defaults *Task, parent *groupInfo, seen declaredIDs, tasks []*parsedTask) []*parsedTask {
	fields := f.fields(m, groupKeys)
	e, ok := f.required(m, fields, "group_id")
	if !ok {
		return tasks
	}
	id, ok := f.identifier("group_id", e.value)
	if !ok {
		return tasks
	}
	g := &groupInfo{TaskGroup: &TaskGroup{ID: id, Line: m.Line, Column: m.Column}}
	if parent != nil {
		g.ID, g.Parent, g.depth = parent.ID+"."+id, parent.ID, parent.depth+1
	}
	if line, dup := seen[g.ID]; dup {
		f.errorf(e.value, "group_id: %q is already a task or group id (first at line %d)", g.ID, line)
		return tasks
	}
	seen[g.ID] = e.value.Line
	f.groups[g.ID] = g
	f.groupOrder = append(f.groupOrder, g)
	if t, ok := fields["tooltip"]; ok && !isNull(t.value) {
		g.Tooltip, _ = f.str("tooltip", t.value)
	}
	base := *defaults
	if da, ok := fields["default_args"]; ok {
		f.applyDefaultArgs(&base, da.value)
	}
	if up, ok := fields["upstream"]; ok {
		g.upstream = f.upstreamList(up.value)
	}
	first := len(tasks)
	if tl, ok := fields["tasks"]; ok && !isNull(tl.value) {
		if list := resolve(tl.value); list == nil || list.Kind != yaml.SequenceNode {
			f.wrongType("tasks", tl.value, "a list of tasks")
		} else {
			tasks = f.taskList(list, &base, g, seen, tasks)
		}
	}
	if sub, ok := fields["task_groups"]; ok && !isNull(sub.value) {
		tasks = f.groupList(sub.value, &base, g, seen, tasks)
	}
	g.tasks = append([]*parsedTask(nil), tasks[first:]...)
	if len(g.tasks) == 0 {
		f.errorf(e.value, "task group %s has no tasks (give it tasks or task_groups)", g.ID)
	}
	return tasks
}

// resolveRef finds what name, written inside group scope, refers to: a
// task or group of that scope or of an enclosing one (innermost first),
// else the id as written.
func (f *fileParser) resolveRef(name, scope string, byID map[string]*parsedTask) string {
	for scope != "" {
		if c := scope + "." + name; byID[c] != nil || f.groups[c] != nil {
			return c
		}
		g := f.groups[scope]
		if g == nil {
			break
		}
		scope = g.Parent
	}
	return name
}

// expandGroups turns dependencies on and of groups into task dependencies:
// a task downstream of a group waits for the group's leaves, and a group's
// own upstream is given to its roots. Inner groups are expanded first, so
// an outer group's roots and leaves are computed from task edges only.
func (f *fileParser) expandGroups(tasks []*parsedTask) {
	if len(f.groups) == 0 {
		return
	}
	byID := make(map[string]*parsedTask, len(tasks))
	for _, t := range tasks {
		byID[t.ID] = t
	}
	for _, t := range tasks {
		for i, e := range t.upstream {
			if e.key == "upstream" && t.Group != "" {
				t.upstream[i].up = f.resolveRef(e.up, t.Group, byID)
			}
		}
	}
	for _, g := range f.groupOrder {
		kept := g.upstream[:0]
		for _, e := range g.upstream {
			if e.key == "upstream" {
				e.up = f.resolveRef(e.up, g.Parent, byID)
			}
			if byID[e.up] == nil && f.groups[e.up] == nil {
				f.errorAt(e.line, e.col, "upstream: unknown task or group %s (in task group %s)", quoteShort(e.up), g.ID)
				continue
			}
			kept = append(kept, e)
		}
		g.upstream = kept
	}
	order := append([]*groupInfo(nil), f.groupOrder...)
	sort.SliceStable(order, func(i, j int) bool { return order[i].depth > order[j].depth })
	for _, g := range order {
		roots, leaves := g.rootsAndLeaves()
		for _, t := range tasks {
			t.upstream = replaceGroupEdges(t.upstream, g.ID, leaves)
		}
		for _, o := range f.groupOrder {
			o.upstream = replaceGroupEdges(o.upstream, g.ID, leaves)
		}
		for _, r := range roots {
			r.upstream = append(r.upstream, g.upstream...)
		}
	}
}

// rootsAndLeaves are the group's tasks with no upstream inside it, and
// with no downstream inside it, in file order.
func (g *groupInfo) rootsAndLeaves() (roots, leaves []*parsedTask) {
	members := make(map[string]bool, len(g.tasks))
	for _, t := range g.tasks {
		members[t.ID] = true
	}
	hasUp, hasDown := map[string]bool{}, map[string]bool{}
	for _, t := range g.tasks {
		for _, e := range t.upstream {
			if members[e.up] && e.up != t.ID {
				hasUp[t.ID], hasDown[e.up] = true, true
			}
		}
	}
	for _, t := range g.tasks {
		if !hasUp[t.ID] {
			roots = append(roots, t)
		}
		if !hasDown[t.ID] {
			leaves = append(leaves, t)
		}
	}
	return roots, leaves
}

// replaceGroupEdges replaces each edge from group id by edges from its
// leaves, declared where the group's edge was.
func replaceGroupEdges(edges []edge, id string, leaves []*parsedTask) []edge {
	found := false
	for _, e := range edges {
		if e.up == id {
			found = true
			break
		}
	}
	if !found {
		return edges
	}
	out := make([]edge, 0, len(edges)+len(leaves))
	for _, e := range edges {
		if e.up != id {
			out = append(out, e)
			continue
		}
		for _, l := range leaves {
			le := e
			le.up = l.ID
			out = append(out, le)
		}
	}
	return out
}

// Group returns the task group with the given full id, or nil.
func (d *DAG) Group(id string) *TaskGroup {
	for _, g := range d.Groups {
		if g.ID == id {
			return g
		}
	}
	return nil
}
