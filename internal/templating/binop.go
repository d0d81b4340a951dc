package templating

import (
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"strings"
	"unsafe"

	controlstructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// binopSlot is a binary operation and how to replace it in its parent.
type binopSlot struct {
	b   *nodes.BinaryExpression
	set func(reflect.Value)
}

var typeData = reflect.TypeFor[*nodes.Data]()

// slotOf returns a setter for an interface-typed field or element (one that
// can hold a node), or nil.
func slotOf(v reflect.Value) func(reflect.Value) {
	if v.Kind() != reflect.Interface || !v.CanAddr() {
		return nil
	}
	field := reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	return func(n reflect.Value) { field.Set(n) }
}

// buildsValues reports whether b is an operator that can build a string or
// a list (or, for **, one whose result feeds a repetition).
func buildsValues(b *nodes.BinaryExpression) bool {
	if b.Operator == nil || b.Operator.Token == nil {
		return false
	}
	switch b.Operator.Token.Type {
	case tokens.Addition, tokens.Multiply, tokens.Tilde, tokens.Power:
		return true
	}
	return false
}

// countLoopPasses makes the loop's body start with {{ podflow:loop(n) }},
// n being the bytes of literal text the body writes per pass.
func countLoopPasses(f *controlstructures.ForControlStructure) {
	if f.BodyWrapper == nil {
		return
	}
	at := f.BodyWrapper.Location
	if at == nil {
		at = &tokens.Token{Line: 1, Col: 1}
	}
	tick := &nodes.Output{
		Start: at,
		End:   at,
		Expression: &nodes.Call{
			Location: at,
			Func:     &nodes.Name{Name: &tokens.Token{Type: tokens.Name, Val: loopGuardName, Line: at.Line, Col: at.Col}},
			Args:     []nodes.Expression{intNode(literalBytes(f.BodyWrapper), at)},
			Kwargs:   map[string]nodes.Expression{},
		},
	}
	f.BodyWrapper.Nodes = append([]nodes.Node{tick}, f.BodyWrapper.Nodes...)
}

// literalBytes is the size of the literal text inside n.
func literalBytes(n any) int {
	total := 0
	visited := map[uintptr]bool{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Pointer:
			if v.IsNil() || v.Type() == typeToken || visited[v.Pointer()] {
				return
			}
			visited[v.Pointer()] = true
			if v.Type() == typeData {
				if d := (*nodes.Data)(unsafe.Pointer(v.Pointer())); d.Data != nil {
					total += len(d.Data.Val)
				}
				return
			}
			walk(v.Elem())
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i))
			}
		case reflect.Slice, reflect.Array:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(n))
	return total
}

// loopGuard is podflow:loop(bytes): one pass of a loop.
func (st *renderState) loopGuard(args *exec.VarArgs) *exec.Value {
	if err := st.iterate(args.Args[0].Integer()); err != nil {
		return exec.AsValue(st.failFunc(err))
	}
	return exec.AsValue("")
}

// binopGuard is podflow:binop(left, right, site): left op right as gonja
// computes it, except that what it builds is charged to the render budget
// first, and that int ** int is an int and 'a' * float an error, as in
// Python (gonja gives 1e9 for 10**9, and 'a' * 1e9 silently renders 0.0).
func (st *renderState) binopGuard(args *exec.VarArgs) *exec.Value {
	l, r, s := args.Args[0], args.Args[1], st.sites[args.Args[2].Integer()]
	v, err := st.binop(s, l, r)
	if err != nil {
		return st.fail(s, err.Error())
	}
	return v
}

func (st *renderState) binop(s site, l, r *exec.Value) (*exec.Value, error) {
	switch s.attr {
	case "+":
		switch {
		case l.IsList():
			if !r.IsList() {
				return nil, fmt.Errorf("can only concatenate list (not %s) to list in %s", pyTypeName(r), s.expr)
			}
			return st.concatLists(s, l, r)
		case l.IsFloat() || r.IsFloat():
			return exec.AsValue(l.Float() + r.Float()), nil
		case l.IsString() || r.IsString():
			return st.concatStrings(s, l, r)
		}
		return exec.AsValue(l.Integer() + r.Integer()), nil
	case "~":
		return st.concatStrings(s, l, r)
	case "*":
		switch {
		case l.IsString() && r.IsInteger():
			return st.repeat(s, l.String(), r.Integer())
		case l.IsInteger() && r.IsString():
			return st.repeat(s, r.String(), l.Integer())
		case (l.IsString() || l.IsList()) && r.IsFloat(), l.IsFloat() && (r.IsString() || r.IsList()):
			return nil, fmt.Errorf("can't multiply sequence by non-int of type 'float' in %s", s.expr)
		case l.IsList() && r.IsInteger():
			return st.repeatList(s, l, r.Integer())
		case l.IsFloat() || r.IsFloat():
			return exec.AsValue(l.Float() * r.Float()), nil
		}
		return exec.AsValue(l.Integer() * r.Integer()), nil
	case "**":
		if l.IsInteger() && r.IsInteger() && r.Integer() >= 0 {
			if p, ok := intPow(l.Integer(), r.Integer()); ok {
				return exec.AsValue(p), nil
			}
		}
		return exec.AsValue(math.Pow(l.Float(), r.Float())), nil
	}
	return nil, fmt.Errorf("unknown operator %q in %s", s.attr, s.expr)
}

func (st *renderState) concatStrings(s site, l, r *exec.Value) (*exec.Value, error) {
	ls, err := st.str(s, l)
	if err != nil {
		return nil, err
	}
	rs, err := st.str(s, r)
	if err != nil {
		return nil, err
	}
	if err := st.charge(float64(len(ls)+len(rs)), fmt.Sprintf("string concatenation %s", s.expr)); err != nil {
		return nil, err
	}
	return exec.AsValue(ls + rs), nil
}

// str is v.String() for an operand, refused before it is built when v is
// a list or dict whose text would not fit in the budget.
func (st *renderState) str(s site, v *exec.Value) (string, error) {
	if v.IsString() {
		return v.String(), nil
	}
	if v.IsList() || v.IsDict() {
		if err := st.check(sizeOf(v, float64(st.left)), fmt.Sprintf("text of an operand of %s", s.expr)); err != nil {
			return "", err
		}
		return printed(v), nil
	}
	return v.String(), nil
}

func (st *renderState) repeat(s site, text string, n int) (*exec.Value, error) {
	if n <= 0 || text == "" {
		return exec.AsValue(""), nil
	}
	if err := st.charge(float64(len(text))*float64(n), fmt.Sprintf("string repetition %s", s.expr)); err != nil {
		return nil, err
	}
	return exec.AsValue(strings.Repeat(text, n)), nil
}

func (st *renderState) concatLists(s site, l, r *exec.Value) (*exec.Value, error) {
	n := l.Len() + r.Len()
	if err := st.charge(float64(n)*listItemBytes, fmt.Sprintf("list concatenation %s", s.expr)); err != nil {
		return nil, err
	}
	out := make([]any, 0, n)
	for i := 0; i < l.Len(); i++ {
		out = append(out, l.Index(i).Interface())
	}
	for i := 0; i < r.Len(); i++ {
		out = append(out, r.Index(i).Interface())
	}
	return exec.AsValue(out), nil
}

func (st *renderState) repeatList(s site, l *exec.Value, n int) (*exec.Value, error) {
	if n <= 0 {
		return exec.AsValue([]any{}), nil
	}
	if err := st.charge(float64(l.Len())*float64(n)*listItemBytes, fmt.Sprintf("list repetition %s", s.expr)); err != nil {
		return nil, err
	}
	out := make([]any, 0, l.Len()*n)
	for range n {
		for i := 0; i < l.Len(); i++ {
			out = append(out, l.Index(i).Interface())
		}
	}
	return exec.AsValue(out), nil
}

// intPow is b**e for e >= 0, or false when it overflows an int.
func intPow(b, e int) (int, bool) {
	switch b {
	case 0:
		if e == 0 {
			return 1, true
		}
		return 0, true
	case 1:
		return 1, true
	case -1:
		if e%2 == 0 {
			return 1, true
		}
		return -1, true
	}
	result := 1
	for ; e > 0; e-- { // |b| >= 2: at most 63 passes before overflowing
		hi, lo := bits.Mul64(uint64(absInt(result)), uint64(absInt(b)))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		result *= b
	}
	return result, true
}

func absInt(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

func pyTypeName(v *exec.Value) string {
	switch {
	case v.IsNil():
		return "NoneType"
	case v.IsString():
		return "str"
	case v.IsBool():
		return "bool"
	case v.IsInteger():
		return "int"
	case v.IsFloat():
		return "float"
	case v.IsList():
		return "list"
	case v.IsDict():
		return "dict"
	}
	return "object"
}
