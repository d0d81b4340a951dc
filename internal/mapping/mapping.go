// Package mapping expands a mapped task (expand / expand_kwargs) into the
// options of each of its instances, and gives an instance its task. It is
// pure: templates are rendered by a function the caller passes, so the
// decision can be tested with tables and timed without a database.
//
//	upstreams done ─▶ Resolve(task, render, maxLen)
//	                    ├─ error (a template renders no list, > max_map_length) ─▶ placeholder failed
//	                    ├─ 0 instances ─▶ placeholder skipped
//	                    └─ n instances ─▶ map_index 0…n-1 queued (store.ExpandTask, one statement)
package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"sort"

	"github.com/podflow/podflow/dag"
	"github.com/podflow/podflow/operators"
)

// DefaultMaxMapLength is Airflow's default max_map_length.
const DefaultMaxMapLength = 1024

// Render renders a template of the task; option names what it belongs to,
// for errors.
type Render func(option, src string) (string, error)

// TooLongError is a mapping over more instances than max_map_length.
type TooLongError struct {
	TaskID        string
	Length, Limit int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("task %s: mapping over %d instances is more than max_map_length %d (raise max_map_length in podflow.yaml, or map over fewer items)",
		e.TaskID, e.Length, e.Limit)
}

// Resolve returns the options of each instance of mapped task t, in
// map_index order: the cartesian product of its expand lists (the first key
// varying slowest, as Airflow) or one instance per object of
// expand_kwargs. Templates are rendered with render and must give a list
// (JSON or a Python literal).
func Resolve(t *dag.Task, render Render, maxLen int) ([]map[string]any, error) {
	if t.Map == nil {
		return nil, fmt.Errorf("task %s is not mapped", t.ID)
	}
	if maxLen <= 0 {
		maxLen = DefaultMaxMapLength
	}
	if kw := t.Map.Kwargs; kw != nil {
		list, err := resolveList(t.ID, "expand_kwargs", *kw, render)
		if err != nil {
			return nil, err
		}
		if len(list) > maxLen {
			return nil, &TooLongError{TaskID: t.ID, Length: len(list), Limit: maxLen}
		}
		return Kwargs(t.ID, list)
	}
	keys := make([]string, len(t.Map.Expand))
	lists := make([][]any, len(t.Map.Expand))
	for i, arg := range t.Map.Expand {
		list, err := resolveList(t.ID, "expand."+arg.Option, arg, render)
		if err != nil {
			return nil, err
		}
		keys[i], lists[i] = arg.Option, list
	}
	if n := productLength(lists); n > maxLen {
		return nil, &TooLongError{TaskID: t.ID, Length: n, Limit: maxLen}
	}
	return Product(keys, lists), nil
}

// resolveList is an argument's literal list or its template's rendering.
func resolveList(taskID, option string, arg dag.ExpandArg, render Render) ([]any, error) {
	if arg.Template == "" {
		return arg.Literal, nil
	}
	out, err := render(option, arg.Template)
	if err != nil {
		return nil, err
	}
	v, err := operators.ParseLiteral(out)
	if err != nil {
		return nil, fmt.Errorf("task %s: %s rendered %s, which is not a list: %w", taskID, option, operators.Excerpt(out), err)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("task %s: %s rendered %s, which is not a list", taskID, option, operators.Excerpt(out))
	}
	return list, nil
}

// productLength is the product of the lists' lengths, saturating at
// math.MaxInt instead of overflowing.
func productLength(lists [][]any) int {
	n := 1
	for _, l := range lists {
		if len(l) == 0 {
			return 0
		}
		if n > math.MaxInt/len(l) {
			return math.MaxInt
		}
		n *= len(l)
	}
	return n
}

// Product is the cartesian product of lists, keyed by option, the first
// key varying slowest.
func Product(keys []string, lists [][]any) []map[string]any {
	n := 1
	for _, l := range lists {
		n *= len(l)
	}
	if len(keys) == 0 || n == 0 {
		return []map[string]any{}
	}
	out := make([]map[string]any, n)
	for i := range out {
		args := make(map[string]any, len(keys))
		rest := i
		for k := len(keys) - 1; k >= 0; k-- {
			l := lists[k]
			args[keys[k]] = l[rest%len(l)]
			rest /= len(l)
		}
		out[i] = args
	}
	return out
}

// Kwargs checks that every item of an expand_kwargs list is an object of
// options and returns them.
func Kwargs(taskID string, list []any) ([]map[string]any, error) {
	out := make([]map[string]any, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			b, _ := json.Marshal(item)
			return nil, fmt.Errorf("task %s: expand_kwargs[%d] is %s, not an object of options", taskID, i, operators.Excerpt(string(b)))
		}
		out[i] = m
	}
	return out, nil
}

// errForbidden: an expand_kwargs object set a task setting, which is
// shared by all instances.
var errForbidden = errors.New("cannot vary per mapped instance")

// Instance returns the task a mapped instance runs: t with its expanded
// options set from args (JSON of an object, as stored with the instance).
// The task's YAML nodes for those options are dropped, so operators decode
// the instance's values.
func Instance(t *dag.Task, args []byte) (*dag.Task, error) {
	var m map[string]any
	if len(args) > 0 {
		v, err := operators.ParseLiteral(string(args))
		if err != nil {
			return nil, fmt.Errorf("task %s: mapped options: %w", t.ID, err)
		}
		m, _ = v.(map[string]any)
	}
	c := *t
	c.Options = maps.Clone(t.Options)
	if c.Options == nil {
		c.Options = map[string]any{}
	}
	c.Nodes = maps.Clone(t.Nodes)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "task_id" || k == "pool" || k == "operator" {
			return nil, fmt.Errorf("task %s: mapped option %s %w", t.ID, k, errForbidden)
		}
		c.Options[k] = m[k]
		delete(c.Nodes, k)
	}
	return &c, nil
}
