package templating

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// Airflow's {{ var.value.KEY }}, {{ var.json.KEY.field }},
// {{ var.value.get('KEY', 'default') }} and {{ conn.ID.host }}. Each lookup
// goes to Context.Secrets once per render (gonja asks for an attribute more
// than once: the guard, then the access).

// newVarAccessor is the var object: var.value and var.json.
func newVarAccessor(st *renderState) *pyObject {
	cache := map[string]*exec.Value{}
	return &pyObject{str: "<var>", attrs: map[string]any{
		"value": &varValues{st: st, cache: cache},
		"json":  &varValues{st: st, cache: cache, json: true},
	}}
}

// varValues is var.value (strings) or var.json (decoded JSON).
type varValues struct {
	st    *renderState
	json  bool
	cache map[string]*exec.Value
}

func (v *varValues) String() string {
	if v.json {
		return "<var.json>"
	}
	return "<var.value>"
}

func (v *varValues) GetItem(key any) (*exec.Value, bool) {
	name, ok := key.(string)
	if !ok {
		return exec.AsValue(nil), false
	}
	return v.GetAttribute(name)
}

func (v *varValues) GetAttribute(name string) (*exec.Value, bool) {
	if name == "get" {
		return exec.AsValue(pyFunc(v.get)), true
	}
	val, found, err := v.lookup(name)
	if err != nil {
		return v.st.failValue(err), true
	}
	if !found {
		return v.st.failValue(fmt.Errorf("variable %q does not exist (set it with `podflow variables set %s VALUE` or PODFLOW_VAR_<KEY>)", name, name)), true
	}
	return val, true
}

// get is var.value.get(key, default=None).
func (v *varValues) get(args *exec.VarArgs) (any, error) {
	if len(args.Args) < 1 || len(args.Args) > 2 || !args.Args[0].IsString() {
		return nil, v.st.failFunc(errors.New("var.value.get takes a key (a string) and an optional default"))
	}
	var def any
	if len(args.Args) == 2 {
		def = args.Args[1].Interface()
	}
	if d, ok := args.KwArgs["default_var"]; ok {
		def = d.Interface()
	}
	val, found, err := v.lookup(args.Args[0].String())
	if err != nil {
		return nil, v.st.failFunc(err)
	}
	if !found {
		return toPython(def), nil
	}
	return val.Interface(), nil
}

func (v *varValues) lookup(key string) (*exec.Value, bool, error) {
	ck := key
	if v.json {
		ck = "json:" + key
	}
	if val, ok := v.cache[ck]; ok {
		return val, val != nil, nil
	}
	if v.st.c.Secrets == nil {
		return nil, false, errors.New("variables are not available to this template")
	}
	s, found, err := v.st.c.Secrets.TemplateVariable(v.st.ctx, key)
	if err != nil {
		return nil, false, err
	}
	if !found {
		v.cache[ck] = nil
		return nil, false, nil
	}
	var out any = s
	if v.json {
		var decoded any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&decoded); err != nil {
			return nil, false, fmt.Errorf("variable %q is not JSON: %v", key, err)
		}
		out = toPython(decoded)
	}
	val := exec.AsValue(out)
	v.cache[ck] = val
	return val, true, nil
}

// connAccessor is the conn object: conn.ID is the connection's fields.
type connAccessor struct {
	st    *renderState
	cache map[string]*exec.Value
}

func (c *connAccessor) String() string { return "<conn>" }

func (c *connAccessor) GetItem(key any) (*exec.Value, bool) {
	name, ok := key.(string)
	if !ok {
		return exec.AsValue(nil), false
	}
	return c.GetAttribute(name)
}

func (c *connAccessor) GetAttribute(id string) (*exec.Value, bool) {
	if val, ok := c.cache[id]; ok {
		return val, true
	}
	if c.st.c.Secrets == nil {
		return c.st.failValue(errors.New("connections are not available to this template")), true
	}
	fields, found, err := c.st.c.Secrets.TemplateConnection(c.st.ctx, id)
	if err != nil {
		return c.st.failValue(err), true
	}
	if !found {
		return c.st.failValue(fmt.Errorf("connection %q does not exist (add it with `podflow connections add %s`, podflow.yaml or PODFLOW_CONN_<ID>)", id, id)), true
	}
	attrs := make(map[string]any, len(fields))
	for k, v := range fields {
		attrs[k] = toPython(v)
	}
	val := exec.AsValue(&pyObject{str: id, attrs: attrs})
	c.cache[id] = val
	return val, true
}

// failValue records err as the render's failure and returns it as the
// value gonja reports.
func (st *renderState) failValue(err error) *exec.Value {
	var re *RenderError
	if !errors.As(err, &re) {
		re = &RenderError{Msg: err.Error(), Err: err}
	}
	st.failure = re
	return exec.AsValue(re)
}
