package templating

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// stateKey names the per-render state in the gonja context. It contains a
// character the lexer never puts in a name, so templates cannot reach it.
const stateKey = "podflow:render-state"

// renderState is everything one Render call owns: nothing in it is shared
// between renders, so concurrent renders of one Template do not interfere.
type renderState struct {
	budget
	ctx          context.Context
	c            *Context
	sites        []site
	activeMacros map[any]bool
	macroCalls   int
	// failure is the last error raised by our own functions and guards;
	// gonja flattens such errors into strings, so Render looks here for the
	// structured one.
	failure *RenderError
}

// failFunc records err as the reason a function call failed and returns it.
func (st *renderState) failFunc(err error) error {
	st.failure = &RenderError{Msg: err.Error(), Err: err}
	return err
}

func stateOf(c *exec.Context) *renderState {
	v, _ := c.Get(stateKey)
	st, _ := v.(*renderState)
	return st
}

// stateFrom finds the render a function is called from: our functions take
// gonja's evaluator, whose context chain leads to the render's root context.
func stateFrom(e *exec.Evaluator) *renderState { return stateOf(e.Environment.Context) }

// newGlobals is the read-only root context shared by every render: functions
// that need the render find it through the evaluator, so nothing here is
// allocated per render.
func newGlobals() *exec.Context {
	return exec.NewContext(map[string]any{
		"macros": macrosModule,
		"range": func(e *exec.Evaluator, args *exec.VarArgs) (any, error) {
			return stateFrom(e).rangeFunc(args)
		},
		"dict": pyFunc(dictFunc),
		attrGuardName: func(e *exec.Evaluator, args *exec.VarArgs) *exec.Value {
			return stateFrom(e).attrGuard(args)
		},
		itemGuardName: func(e *exec.Evaluator, args *exec.VarArgs) *exec.Value {
			return stateFrom(e).itemGuard(args)
		},
		binopGuardName: func(e *exec.Evaluator, args *exec.VarArgs) *exec.Value {
			return stateFrom(e).binopGuard(args)
		},
		loopGuardName: func(e *exec.Evaluator, args *exec.VarArgs) *exec.Value {
			return stateFrom(e).loopGuard(args)
		},
		outGuardName: func(e *exec.Evaluator, args *exec.VarArgs) *exec.Value {
			return stateFrom(e).outGuard(args)
		},
		methodCallName: methodCall,
	})
}

// xcomPullFunc is what ti.xcom_pull evaluates to.
func xcomPullFunc(e *exec.Evaluator, args *exec.VarArgs) (any, error) {
	return stateFrom(e).xcomPull(args)
}

// variable builds one name of Airflow's task context. Render builds only
// the names the template mentions.
func variable(st *renderState, name string) (any, bool) {
	c := st.c
	switch name {
	case "ds":
		return c.LogicalDate.UTC().Format("2006-01-02"), true
	case "ds_nodash":
		return c.LogicalDate.UTC().Format("20060102"), true
	case "ts":
		return isoformat(c.LogicalDate.UTC(), 'T'), true
	case "ts_nodash":
		return c.LogicalDate.UTC().Format("20060102T150405"), true
	case "ts_nodash_with_tz":
		return tsNoDashWithTZ(isoformat(c.LogicalDate.UTC(), 'T')), true
	case "logical_date", "execution_date":
		return newPyDatetime(c.LogicalDate.UTC()), true
	case "data_interval_start":
		return newPyDatetime(c.DataIntervalStart.UTC()), true
	case "data_interval_end":
		return newPyDatetime(c.DataIntervalEnd.UTC()), true
	case "run_id":
		return c.RunID, true
	case "dag":
		return &pyObject{str: c.DagID, attrs: map[string]any{"dag_id": c.DagID}}, true
	case "task":
		attrs := make(map[string]any, len(c.TaskOptions)+2)
		for k, v := range c.TaskOptions {
			attrs[k] = toPython(v)
		}
		attrs["task_id"], attrs["dag_id"] = c.TaskID, c.DagID
		return &pyObject{str: c.TaskID, attrs: attrs}, true
	case "params":
		return asDict(c.Params), true
	case "dag_run":
		logical := newPyDatetime(c.LogicalDate.UTC())
		return &pyObject{
			str: "<DagRun " + c.DagID + " @ " + logical.String() + ": " + c.RunID + ", state:running>",
			attrs: map[string]any{
				"dag_id":              c.DagID,
				"run_id":              c.RunID,
				"conf":                asDict(c.Conf),
				"logical_date":        logical,
				"execution_date":      logical,
				"data_interval_start": newPyDatetime(c.DataIntervalStart.UTC()),
				"data_interval_end":   newPyDatetime(c.DataIntervalEnd.UTC()),
			},
		}, true
	case "task_instance", "ti":
		return &taskInstance{c: c}, true
	case "triggering_asset_events":
		// URI → the asset's events that triggered the run (empty unless
		// the run is asset-triggered).
		return toPython(c.TriggeringAssetEvents), true
	case "var":
		return newVarAccessor(st), true
	case "conn":
		return &connAccessor{st: st, cache: map[string]*exec.Value{}}, true
	}
	return nil, false
}

// taskInstance is Airflow's ti / task_instance. Its attributes are computed
// when read, so a render that only calls xcom_pull pays for nothing else.
type taskInstance struct{ c *Context }

func (ti *taskInstance) GetAttribute(name string) (*exec.Value, bool) {
	c := ti.c
	switch name {
	case "xcom_pull":
		return exec.AsValue(xcomPullFunc), true
	case "task_id":
		return exec.AsValue(c.TaskID), true
	case "dag_id":
		return exec.AsValue(c.DagID), true
	case "run_id":
		return exec.AsValue(c.RunID), true
	case "try_number":
		return exec.AsValue(int64(c.TryNumber)), true
	case "map_index":
		if c.Mapped {
			return exec.AsValue(int64(c.MapIndex)), true
		}
		return exec.AsValue(int64(-1)), true
	case "logical_date", "execution_date":
		return exec.AsValue(newPyDatetime(c.LogicalDate.UTC())), true
	}
	return exec.AsValue(nil), false
}

func (ti *taskInstance) GetItem(any) (*exec.Value, bool) { return exec.AsValue(nil), false }

func (ti *taskInstance) String() string {
	return "<TaskInstance: " + ti.c.DagID + "." + ti.c.TaskID + " " + ti.c.RunID + " [running]>"
}

// tsNoDashWithTZ is Airflow's ts.replace("-", "").replace(":", "").
func tsNoDashWithTZ(ts string) string {
	return tsReplacer.Replace(ts)
}

// asDict copies a caller's map into template values; the copy means a
// template's {% set %} or dict methods never write into the caller's map,
// which other renders may be reading.
func asDict(m map[string]any) pyDict {
	d := make(pyDict, len(m))
	for k, v := range m {
		d[k] = toPython(v)
	}
	return d
}

// xcomPull is TaskInstance.xcom_pull(task_ids=None, dag_id=None,
// key='return_value', include_prior_dates=False, ..., default=None) for the
// current run. A string task_ids gives that task's value (default when
// absent); a list gives a list of values with None for the missing ones.
func (st *renderState) xcomPull(args *exec.VarArgs) (any, error) {
	v, err := st.xcomPullArgs(args)
	if err != nil {
		return nil, st.failFunc(err)
	}
	return v, nil
}

func (st *renderState) xcomPullArgs(args *exec.VarArgs) (any, error) {
	var taskIDs, dagID, key, def, mapIndexes *exec.Value
	names := []string{"task_ids", "dag_id", "key"}
	slots := []**exec.Value{&taskIDs, &dagID, &key}
	if len(args.Args) > len(slots) {
		return nil, fmt.Errorf("xcom_pull takes at most %d positional arguments (task_ids, dag_id, key)", len(slots))
	}
	for i, a := range args.Args {
		*slots[i] = a
	}
	for name, v := range args.KwArgs {
		switch name {
		case "task_ids", "dag_id", "key":
			for i, n := range names {
				if n == name {
					if *slots[i] != nil {
						return nil, fmt.Errorf("xcom_pull got multiple values for %s", name)
					}
					*slots[i] = v
				}
			}
		case "default":
			def = v
		case "include_prior_dates":
			if v.IsTrue() {
				return nil, errors.New("xcom_pull: include_prior_dates=True is not supported")
			}
		case "map_indexes":
			mapIndexes = v
		case "run_id", "session":
			if !v.IsNil() {
				return nil, fmt.Errorf("xcom_pull: %s is not supported", name)
			}
		default:
			return nil, fmt.Errorf("xcom_pull got an unexpected keyword argument %q", name)
		}
	}
	if dagID != nil && !dagID.IsNil() && dagID.String() != st.c.DagID {
		return nil, fmt.Errorf("xcom_pull: reading XComs of another DAG (%s) is not supported", dagID.String())
	}
	xcomKey := "return_value"
	if key != nil && !key.IsNil() {
		if !key.IsString() {
			return nil, fmt.Errorf("xcom_pull: key must be a string, not %s", key.String())
		}
		xcomKey = key.String()
	}
	if taskIDs == nil || taskIDs.IsNil() {
		return nil, errors.New("xcom_pull: task_ids is required")
	}
	if st.c.XCom == nil {
		return nil, errors.New("xcom_pull: no XCom store is available to this template")
	}
	var defValue any
	if def != nil {
		defValue = def.Interface()
	}
	if mapIndexes != nil && !mapIndexes.IsNil() {
		if !taskIDs.IsString() {
			return nil, errors.New("xcom_pull: map_indexes needs task_ids to be one task id")
		}
		return st.pullMapIndexes(taskIDs.String(), xcomKey, mapIndexes, defValue)
	}
	switch {
	case taskIDs.IsString():
		return st.pullOne(taskIDs.String(), xcomKey, defValue)
	case taskIDs.IsList():
		n := taskIDs.Len()
		out := make(pyList, 0, n)
		for i := 0; i < n; i++ {
			id := taskIDs.Index(i)
			if !id.IsString() {
				return nil, fmt.Errorf("xcom_pull: task_ids must be strings, not %s", id.String())
			}
			v, err := st.pullOne(id.String(), xcomKey, nil)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("xcom_pull: task_ids must be a string or a list of strings, not %s", taskIDs.String())
}

// pullMapIndexes is xcom_pull(task_ids=t, map_indexes=N or [N, M]): one
// mapped instance's value, or a list of them.
func (st *renderState) pullMapIndexes(taskID, key string, indexes *exec.Value, def any) (any, error) {
	mp, ok := st.c.XCom.(MapIndexPuller)
	if !ok {
		return nil, errors.New("xcom_pull: map_indexes is not supported by this XCom store")
	}
	one := func(v *exec.Value) (any, error) {
		if !v.IsInteger() {
			return nil, fmt.Errorf("xcom_pull: map_indexes must be integers, not %s", v.String())
		}
		raw, found, err := mp.PullMapIndex(st.ctx, taskID, key, v.Integer())
		if err != nil {
			return nil, &pullError{fmt.Errorf("xcom_pull task %s map index %d key %s: %w", taskID, v.Integer(), key, err)}
		}
		if !found {
			return def, nil
		}
		return decodeXCom(raw)
	}
	if !indexes.IsList() {
		return one(indexes)
	}
	out := make(pyList, 0, indexes.Len())
	for i := 0; i < indexes.Len(); i++ {
		v, err := one(indexes.Index(i))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (st *renderState) pullOne(taskID, key string, def any) (any, error) {
	raw, found, err := st.c.XCom.Pull(st.ctx, taskID, key)
	if err != nil {
		return nil, &pullError{fmt.Errorf("xcom_pull task %s key %s: %w", taskID, key, err)}
	}
	if !found {
		return def, nil
	}
	v, err := decodeXCom(raw)
	if err != nil {
		return nil, fmt.Errorf("xcom_pull task %s key %s: %w", taskID, key, err)
	}
	return v, nil
}

// decodeXCom turns what an XComPuller returns into template values. Raw JSON
// (json.RawMessage or []byte) is decoded with UseNumber so that 1 stays an
// integer and renders "1"; already-decoded values are converted as they are.
func decodeXCom(raw any) (any, error) {
	var data []byte
	switch x := raw.(type) {
	case json.RawMessage:
		data = x
	case []byte:
		data = x
	default:
		return toPython(raw), nil
	}
	return decodeXComJSON(data)
}

// rangeFunc is Python's range, returning a list capped at maxRangeItems so
// that range(100000000000) fails at once instead of looping for hours.
func (st *renderState) rangeFunc(args *exec.VarArgs) (any, error) {
	v, err := rangeList(st, args)
	if err != nil {
		return nil, st.failFunc(err)
	}
	return v, nil
}

func rangeList(st *renderState, args *exec.VarArgs) (any, error) {
	if len(args.KwArgs) > 0 {
		return nil, errors.New("range takes no keyword arguments")
	}
	var start, stop, step int64 = 0, 0, 1
	ints := make([]int64, len(args.Args))
	for i, a := range args.Args {
		if !a.IsInteger() {
			return nil, fmt.Errorf("range: %s is not an integer", a.String())
		}
		ints[i] = int64(a.Integer())
	}
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	case 3:
		start, stop, step = ints[0], ints[1], ints[2]
	default:
		return nil, errors.New("range expects 1 to 3 integer arguments")
	}
	if step == 0 {
		return nil, errors.New("range: step must not be zero")
	}
	var n int64
	switch {
	case step > 0 && stop > start:
		n = (stop - start + step - 1) / step
	case step < 0 && start > stop:
		n = (start - stop - step - 1) / -step
	}
	if n > maxRangeItems || n < 0 {
		return nil, &sandboxError{msg: fmt.Sprintf("range of %d items exceeds the limit of %d", n, maxRangeItems)}
	}
	if err := st.ctx.Err(); err != nil {
		return nil, err
	}
	out := make(pyList, n)
	for i := range out {
		out[i] = start + int64(i)*step
	}
	return out, nil
}

func dictFunc(args *exec.VarArgs) (any, error) {
	if len(args.Args) > 0 {
		return nil, errors.New("dict() takes keyword arguments only here")
	}
	d := make(pyDict, len(args.KwArgs))
	for k, v := range args.KwArgs {
		d[k] = toPython(v.Interface())
	}
	return d, nil
}

// macrosModule is Airflow's `macros`: plain functions, no state.
var macrosModule = &pyObject{
	str: "<module 'airflow.macros'>",
	attrs: map[string]any{
		"ds_add":    pyFunc(dsAdd),
		"ds_format": pyFunc(dsFormat),
	},
}

// dsAdd is macros.ds_add(ds, days): ds moved by a number of days.
func dsAdd(args *exec.VarArgs) (any, error) {
	if len(args.Args) != 2 || !args.Args[0].IsString() || !args.Args[1].IsInteger() {
		return nil, errors.New("ds_add expects (ds: str, days: int)")
	}
	t, err := time.Parse("2006-01-02", args.Args[0].String())
	if err != nil {
		return nil, fmt.Errorf("ds_add: %q is not a YYYY-MM-DD date", args.Args[0].String())
	}
	return t.AddDate(0, 0, args.Args[1].Integer()).Format("2006-01-02"), nil
}

// dsFormat is macros.ds_format(ds, input_format, output_format) with
// Python strptime/strftime formats.
func dsFormat(args *exec.VarArgs) (any, error) {
	if len(args.Args) != 3 {
		return nil, errors.New("ds_format expects (ds, input_format, output_format)")
	}
	for _, a := range args.Args {
		if !a.IsString() {
			return nil, errors.New("ds_format expects string arguments")
		}
	}
	t, err := strptime(args.Args[0].String(), args.Args[1].String())
	if err != nil {
		return nil, fmt.Errorf("ds_format: %w", err)
	}
	return strftime(t, args.Args[2].String()), nil
}

var tsReplacer = strings.NewReplacer("-", "", ":", "")
