package dag

import (
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxIDLength is Airflow's limit on dag and task ids.
const maxIDLength = 250

// dagKeys are the keys a DAG file may have at its top level.
var dagKeys = []string{"dag_id", "description", "schedule", "timezone", "start_date", "end_date",
	"catchup", "max_active_runs", "max_active_tasks", "dagrun_timeout", "tags", "params",
	"allow_conf_override", "default_args", "tasks", "task_groups", "dependencies", "is_paused_upon_creation",
	"on_failure_callback", "on_success_callback", "deadline"}

// fields returns the entries of mapping m by key, reporting keys not in
// known (with a suggestion) and known keys given twice.
func (f *fileParser) fields(m *yaml.Node, known []string) map[string]entry {
	out := map[string]entry{}
	for _, e := range f.entries(m) {
		if !contains(known, e.name()) {
			f.errorf(e.key, "%s: unknown key%s", e.name(), didYouMean(e.name(), known))
			continue
		}
		out[e.name()] = e
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// required reports a missing key, at the mapping that lacks it.
func (f *fileParser) required(m *yaml.Node, fields map[string]entry, key string) (entry, bool) {
	e, ok := fields[key]
	if !ok {
		f.errorf(m, "%s: required key is missing", key)
	}
	return e, ok
}

// dagFields reads the DAG's own settings.
func (f *fileParser) dagFields(d *DAG, root *yaml.Node, fields map[string]entry) {
	if e, ok := f.required(root, fields, "dag_id"); ok {
		if id, ok := f.identifier("dag_id", e.value); ok {
			d.ID = id
			d.idLine, d.idColumn = e.value.Line, e.value.Column
		}
	}
	if e, ok := fields["description"]; ok && !isNull(e.value) {
		d.Description, _ = f.str("description", e.value)
	}
	if e, ok := fields["timezone"]; ok && !isNull(e.value) {
		if name, ok := f.str("timezone", e.value); ok {
			if loc, err := f.p.location(name); err != nil {
				f.errorf(e.value, "timezone: %v", err)
			} else {
				d.Timezone = loc
			}
		}
	}
	if e, ok := fields["schedule"]; ok && !isNull(e.value) {
		if r := resolve(e.value); r != nil && r.Kind == yaml.MappingNode {
			f.assetSchedule(d, r)
		} else if expr, ok := f.str("schedule", e.value); ok {
			if _, err := ParseSchedule(expr, d.Timezone); err != nil {
				f.errorf(e.value, "schedule: %v", err)
			} else {
				d.Schedule = strings.TrimSpace(expr)
			}
		}
	}
	if e, ok := fields["start_date"]; ok && !isNull(e.value) {
		d.StartDate, _ = f.date("start_date", e.value, d.Timezone)
	}
	if e, ok := fields["end_date"]; ok && !isNull(e.value) {
		if end, ok := f.date("end_date", e.value, d.Timezone); ok {
			if !d.StartDate.IsZero() && end.Before(d.StartDate) {
				f.errorf(e.value, "end_date: %s is before start_date %s", end.Format(time.RFC3339), d.StartDate.Format(time.RFC3339))
			}
			d.EndDate = end
		}
	}
	if e, ok := fields["catchup"]; ok {
		d.Catchup, _ = f.boolean("catchup", e.value)
	}
	d.PausedAtCreation = f.p.PausedAtCreation
	if e, ok := fields["is_paused_upon_creation"]; ok {
		d.PausedAtCreation, _ = f.boolean("is_paused_upon_creation", e.value)
	}
	for _, key := range []string{"max_active_runs", "max_active_tasks"} {
		e, ok := fields[key]
		if !ok {
			continue
		}
		n, ok := f.integer(key, e.value)
		if ok && n < 1 {
			f.errorf(e.value, "%s: wants 1 or more, got %d", key, n)
			continue
		}
		if ok && key == "max_active_runs" {
			d.MaxActiveRuns = n
		} else if ok {
			d.MaxActiveTasks = n
		}
	}
	if e, ok := fields["dagrun_timeout"]; ok && !isNull(e.value) {
		d.DagrunTimeout, _ = f.duration("dagrun_timeout", e.value)
	}
	if e, ok := fields["tags"]; ok && !isNull(e.value) {
		d.Tags, _ = f.stringList("tags", e.value)
	}
	if e, ok := fields["params"]; ok && !isNull(e.value) {
		if r := resolve(e.value); r == nil || r.Kind != yaml.MappingNode {
			f.wrongType("params", e.value, KindMap.String())
		} else if m, ok := f.plain("params", r).(map[string]any); ok {
			d.Params = m
		}
	}
	if e, ok := fields["allow_conf_override"]; ok && !isNull(e.value) {
		f.confOverride(d, e.value)
	}
}

// confOverride reads allow_conf_override: true (default), false, or a list
// of declared params.
func (f *fileParser) confOverride(d *DAG, n *yaml.Node) {
	if r := resolve(n); r != nil && r.Kind == yaml.SequenceNode {
		keys, _ := f.stringList("allow_conf_override", n)
		for i, k := range keys {
			if _, ok := d.Params[k]; !ok {
				f.errorf(r.Content[i], "allow_conf_override: %q is not a param of this DAG%s", k, didYouMean(k, sortedKeys(d.Params)))
			}
		}
		d.ConfOverride = ConfOverride{Restricted: true, Keys: keys}
		return
	}
	if allow, ok := f.boolean("allow_conf_override", n); ok && !allow {
		d.ConfOverride = ConfOverride{Restricted: true}
	}
}

// identifierText reports whether s is a valid dag or task id.
func identifierText(s string) bool {
	if s == "" || len(s) > maxIDLength {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// identifier reads a dag or task id.
func (f *fileParser) identifier(key string, n *yaml.Node) (string, bool) {
	s, ok := f.str(key, n)
	if !ok {
		return "", false
	}
	if !identifierText(s) {
		if len(s) > maxIDLength {
			f.errorf(n, "%s: %s is longer than %d characters", key, quoteShort(s), maxIDLength)
		} else {
			f.errorf(n, "%s: %s is not a valid id: use letters, digits, \"-\", \"_\" and \".\"", key, quoteShort(s))
		}
		return "", false
	}
	return s, true
}
