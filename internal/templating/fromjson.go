package templating

import (
	"errors"
	"fmt"

	"github.com/nikolalohinski/gonja/v2/exec"
)

// filterFromJSON is the fromjson filter: {{ (ti.xcom_pull('extract') |
// fromjson).orders }}. A bash task's XCom is the text it printed (as in
// Airflow), so a task that prints JSON needs this to index into it.
// Integers stay integers, as with pod XComs.
func filterFromJSON(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if len(params.Args) > 0 || len(params.KwArgs) > 0 {
		return exec.AsValue(exec.ErrInvalidCall(errors.New("fromjson takes no arguments")))
	}
	if !in.IsString() {
		// Already decoded (a pod's XCom, a conf value): pass it through, so
		// a template works whichever operator produced the value.
		return in
	}
	v, err := decodeXComJSON([]byte(in.String()))
	if err != nil {
		return exec.AsValue(fmt.Errorf("fromjson: the value is not JSON (%s): %w", excerpt(in.String()), err))
	}
	return exec.AsValue(v)
}

// excerpt is the start of a long string, for error messages.
func excerpt(s string) string {
	const max = 60
	r := []rune(s)
	if len(r) > max {
		return fmt.Sprintf("%q…", string(r[:max]))
	}
	return fmt.Sprintf("%q", s)
}

// notJSONHint explains an attribute or item looked up on a string: most
// often the string is a bash task's XCom holding JSON.
func notJSONHint(target *exec.Value) string {
	if !target.IsString() {
		return ""
	}
	return " (the value is a string, not a dict or list; if it holds JSON, such as a bash task's XCom, parse it first: (… | fromjson)['key'])"
}
