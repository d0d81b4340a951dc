package templating

import (
	"fmt"
	"sort"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"

	"github.com/podflow/podflow/internal/suggest"
)

// Static checks: what `podflow validate` can tell about a template without
// rendering it. They find the mistakes that would otherwise fail at run
// time (and, before templates failed fast, be retried): a name that is not
// in the task context ({{ prev_ds }}), an attribute the context's fixed
// objects do not have ({{ task.owner }}), a misspelt declared param
// ({{ params.tabel }}).

// Problem is one static finding, at its position in the template source.
type Problem struct {
	Line, Column int // 1-based, within the template source
	Msg          string
}

// fixedObjects are the context names whose attributes are fixed; the
// others (params, dag_run.conf, XCom values, dates) hold the user's data or
// methods that are checked at run time. task is not among them: its
// attributes are the task's options, which differ by operator (and a
// mapped instance's come from its expansion).
var fixedObjects = map[string]bool{"dag": true, "ti": true, "task_instance": true, "dag_run": true, "var": true}

// Check returns the template's static problems. params are the DAG's and
// task's declared params; nil means none were declared, and then params.x
// is not checked (they may come from the run's conf).
func (t *Template) Check(params map[string]any) []Problem {
	var out []Problem
	empty := &renderState{c: &Context{}}
	box := theSandbox()
	names := make([]string, 0, len(t.free))
	for n := range t.free {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, ok := variable(empty, n); ok || box.globals.Has(n) || box.env.Context.Has(n) {
			continue
		}
		at := t.free[n]
		msg := fmt.Sprintf("unknown name %q: not in the task context", n)
		if hint, ok := airflowOnly[n]; ok {
			msg += "; " + hint
		} else if c := closestName(n); c != "" {
			msg += fmt.Sprintf("; did you mean %q?", c)
		}
		out = append(out, Problem{Line: at.Line, Column: at.Col, Msg: msg})
	}
	for _, s := range t.sites {
		root, attr, ok := firstAccess(s)
		if !ok {
			continue
		}
		switch {
		case root == "params" && params != nil:
			if _, declared := params[attr]; !declared {
				out = append(out, Problem{Line: s.line, Column: s.col,
					Msg: fmt.Sprintf("params.%s is not declared%s", attr, didYouMean(attr, keys(params)))})
			}
		case fixedObjects[root] && t.free[root] != nil:
			v, _ := variable(empty, root)
			g, ok := v.(interface {
				GetAttribute(string) (*exec.Value, bool)
			})
			if !ok {
				continue
			}
			if _, found := g.GetAttribute(attr); !found {
				out = append(out, Problem{Line: s.line, Column: s.col, Msg: fmt.Sprintf("%s has no attribute %q", root, attr)})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Line != out[j].Line {
			return out[i].Line < out[j].Line
		}
		return out[i].Column < out[j].Column
	})
	return out
}

// firstAccess splits an access site "root.attr…" or "root['attr']…" into
// the root name and its first attribute, when it is that simple.
func firstAccess(s site) (root, attr string, ok bool) {
	expr := s.expr
	i := strings.IndexAny(expr, ".[")
	if i <= 0 {
		return "", "", false
	}
	root, rest := expr[:i], expr[i:]
	if !isIdent(root) {
		return "", "", false
	}
	switch {
	case rest[0] == '.':
		rest = rest[1:]
		j := strings.IndexAny(rest, ".[(")
		if j >= 0 {
			rest = rest[:j]
		}
		return root, rest, isIdent(rest)
	case strings.HasPrefix(rest, "['") || strings.HasPrefix(rest, `["`):
		q := rest[1]
		end := strings.IndexByte(rest[2:], q)
		if end < 0 {
			return "", "", false
		}
		return root, rest[2 : 2+end], true
	}
	return "", "", false
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r != '_' && !(r >= 'a' && r <= 'z') && !(r >= 'A' && r <= 'Z') && !(i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// airflowOnly explains Airflow context names podflow does not offer.
var airflowOnly = map[string]string{
	"prev_ds":                          "Airflow 3 removed it; use data_interval_start",
	"next_ds":                          "Airflow 3 removed it; use data_interval_end",
	"prev_execution_date":              "Airflow 3 removed it; use data_interval_start",
	"next_execution_date":              "Airflow 3 removed it; use data_interval_end",
	"yesterday_ds":                     "Airflow 3 removed it; use macros.ds_add(ds, -1)",
	"tomorrow_ds":                      "Airflow 3 removed it; use macros.ds_add(ds, 1)",
	"conf":                             "use dag_run.conf",
	"prev_data_interval_start_success": "not available in podflow",
}

// contextNames are the task context's names, for "did you mean".
var contextNames = []string{"ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz", "logical_date", "execution_date",
	"data_interval_start", "data_interval_end", "run_id", "dag", "task", "params", "dag_run", "task_instance", "ti", "macros", "var", "conn", "triggering_asset_events"}

func closestName(n string) string { return suggest.Closest(n, contextNames) }

func didYouMean(word string, candidates []string) string {
	if c := suggest.Closest(word, candidates); c != "" {
		return fmt.Sprintf("; did you mean %q?", c)
	}
	if len(candidates) > 0 {
		sort.Strings(candidates)
		return fmt.Sprintf(" (declared: %s)", strings.Join(candidates, ", "))
	}
	return ""
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// bindMacro records the names a macro definition binds.
func bindMacro(bound map[string]bool, m *nodes.Macro) {
	bound[m.Name] = true
	for _, p := range m.Kwargs {
		if n, ok := p.Key.(*nodes.Name); ok {
			bound[n.Name.Val] = true
		}
		if s, ok := p.Key.(*nodes.String); ok {
			bound[s.Val] = true
		}
	}
	for _, n := range []string{m.VarArgsName, m.KwArgsName, "varargs", "kwargs", "caller"} {
		if n != "" {
			bound[n] = true
		}
	}
}
