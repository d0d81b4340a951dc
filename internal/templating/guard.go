package templating

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	controlstructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Compile-time rewrite of gonja's syntax tree.
//
// gonja resolves `x.name` and `x[key]` with reflection: for any Go value
// that does not implement exec.AttributeGetter it calls
// reflect.Value.MethodByName(name) and FieldByName(name). Our own values
// implement GetAttribute, but gonja's literals do not (a dict literal is an
// *exec.Dict, a list literal an exec.ValuesList, both with Go methods), so
// `{{ {'a': 1}.Keys() }}` would call a Go method. gonja has no hook for
// attribute access, so after parsing we rewrite the tree:
//
//	x.name     becomes  podflow:attr(x, site).name
//	x.name(a)  becomes  podflow:method(x, site, a)
//	x[key]     becomes  podflow:item(x, key, site)[key]  (x[0] stays: an index reaches no Go member)
//	{{ e }}    becomes  {{ podflow:out(e) }}
//	a * b      becomes  podflow:binop(a, b, site)  (also +, ~ and **)
//	{% for %}  gets     {{ podflow:loop(bytes) }} as the first node of its body
//
// podflow:attr and podflow:item check that the attribute or item exists, so
// an undefined one is reported with its exact expression and position, and
// hide the Go methods and fields of values that do not answer GetAttribute
// themselves. podflow:method resolves calls as Python does (built-in str,
// list and dict methods, then function attributes of our objects) without
// ever looking up a Go method. podflow:out prints values as Airflow does
// (None, Python reprs of lists and dicts) and charges what they print to the
// render budget. podflow:binop computes the operators that build strings
// and lists, charging the result to the render budget before building it
// ('x' * 10**12 would exhaust memory, which Go cannot recover from).
// podflow:loop counts every loop pass against the iteration budget and
// stops the loop when the render's context is done. The names contain ':', which the lexer never puts in a
// name, so templates cannot call them.
//
// The nodes sit behind unexported fields of gonja's control-structure types,
// so they are found by reflection and edited through unsafe.Pointer. This
// happens once, in Compile, before the template is shared.

const (
	attrGuardName  = "podflow:attr"
	itemGuardName  = "podflow:item"
	outGuardName   = "podflow:out"
	binopGuardName = "podflow:binop"
	loopGuardName  = "podflow:loop"
	methodCallName = "podflow:method"
)

// site is one attribute or item access in the source.
type site struct {
	expr      string // e.g. "params.missing", "ti.xcom_pull('t')[0]"
	attr      string // attribute name; empty for item access
	index     int    // attribute index for x.0 (gonja's GetAttribute.Index)
	line, col int
}

var (
	typeGetAttribute = reflect.TypeFor[*nodes.GetAttribute]()
	typeGetItem      = reflect.TypeFor[*nodes.GetItem]()
	typeOutput       = reflect.TypeFor[*nodes.Output]()
	typeCall         = reflect.TypeFor[*nodes.Call]()
	typeBinary       = reflect.TypeFor[*nodes.BinaryExpression]()
	typeName         = reflect.TypeFor[*nodes.Name]()
	typeFilterCall   = reflect.TypeFor[*nodes.FilterCall]()
	typeTestCall     = reflect.TypeFor[*nodes.TestCall]()
	typeToken        = reflect.TypeFor[*tokens.Token]()
	typeFor          = reflect.TypeFor[*controlstructures.ForControlStructure]()
	typeMacro        = reflect.TypeFor[*nodes.Macro]()
	typeSet          = reflect.TypeFor[*controlstructures.SetControlStructure]()
	typeWith         = reflect.TypeFor[*controlstructures.WithControlStructure]()
)

// guardTree rewrites the parsed template in place and returns the access
// sites the guards refer to by index, and the names the template mentions.
func guardTree(root *nodes.Template, env *exec.Environment) (*tree, error) {
	var (
		attrs   []*nodes.GetAttribute
		items   []*nodes.GetItem
		outputs []*nodes.Output
		calls   []*nodes.Call
		binops  []binopSlot
		loops   []*controlstructures.ForControlStructure
		names   = map[string]bool{}
		nameAt  = map[string]*tokens.Token{} // first use of each name
		bound   = map[string]bool{}          // names the template binds itself
		unknown []string                     // filters and tests gonja does not have
		firstAt *tokens.Token
	)
	visited := map[uintptr]bool{}
	var walk func(v reflect.Value, set func(reflect.Value))
	walk = func(v reflect.Value, set func(reflect.Value)) {
		switch v.Kind() {
		case reflect.Interface:
			if v.IsNil() {
				return
			}
			walk(v.Elem(), nil)
			// Post-order: a replaced operand is in place before the
			// operation that reads it is replaced.
			if e := v.Elem(); e.Type() == typeBinary && set != nil && typeCall.Implements(v.Type()) {
				if b := (*nodes.BinaryExpression)(unsafe.Pointer(e.Pointer())); buildsValues(b) {
					binops = append(binops, binopSlot{b: b, set: set})
				}
			}
		case reflect.Pointer:
			if v.IsNil() || v.Type() == typeToken || visited[v.Pointer()] {
				return
			}
			visited[v.Pointer()] = true
			switch v.Type() {
			case typeGetAttribute:
				attrs = append(attrs, (*nodes.GetAttribute)(unsafe.Pointer(v.Pointer())))
			case typeGetItem:
				items = append(items, (*nodes.GetItem)(unsafe.Pointer(v.Pointer())))
			case typeOutput:
				outputs = append(outputs, (*nodes.Output)(unsafe.Pointer(v.Pointer())))
			case typeName:
				tok := (*nodes.Name)(unsafe.Pointer(v.Pointer())).Name
				names[tok.Val] = true
				if at, seen := nameAt[tok.Val]; !seen || tok.Pos < at.Pos {
					nameAt[tok.Val] = tok
				}
			case typeMacro:
				m := (*nodes.Macro)(unsafe.Pointer(v.Pointer()))
				bindMacro(bound, m)
			case typeSet:
				if target := v.Elem().FieldByName("target"); target.IsValid() && !target.IsNil() && target.Elem().Type() == typeName {
					bound[(*nodes.Name)(unsafe.Pointer(target.Elem().Pointer())).Name.Val] = true
				}
			case typeWith:
				if pairs := v.Elem().FieldByName("pairs"); pairs.IsValid() && pairs.Kind() == reflect.Map {
					for _, k := range pairs.MapKeys() {
						bound[k.String()] = true
					}
				}
			case typeCall:
				calls = append(calls, (*nodes.Call)(unsafe.Pointer(v.Pointer())))
			case typeFilterCall:
				if f := (*nodes.FilterCall)(unsafe.Pointer(v.Pointer())); !env.Filters.Exists(f.Name) {
					unknown = append(unknown, "filter "+strconv.Quote(f.Name))
					if firstAt == nil {
						firstAt = f.Token
					}
				}
			case typeTestCall:
				if tc := (*nodes.TestCall)(unsafe.Pointer(v.Pointer())); !env.Tests.Exists(tc.Name) {
					unknown = append(unknown, "test "+strconv.Quote(tc.Name))
					if firstAt == nil {
						firstAt = tc.Token
					}
				}
			case typeFor:
				l := (*controlstructures.ForControlStructure)(unsafe.Pointer(v.Pointer()))
				loops = append(loops, l)
				bound[l.Key], bound[l.Value], bound["loop"] = true, true, true
			}
			walk(v.Elem(), nil)
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i), slotOf(v.Field(i)))
			}
		case reflect.Slice, reflect.Array:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), slotOf(v.Index(i)))
			}
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				var set func(reflect.Value)
				if v.CanAddr() {
					m, k := reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem(), it.Key()
					set = func(n reflect.Value) { m.SetMapIndex(k, n) }
				}
				walk(it.Value(), set)
			}
		}
	}
	walk(reflect.ValueOf(root), nil)
	if len(unknown) > 0 {
		se := &parser.SyntaxError{Message: "unknown " + strings.Join(unknown, ", ")}
		if firstAt != nil {
			se.Line, se.Column = firstAt.Line, firstAt.Col
		}
		return nil, se
	}

	// Describe every site before changing any node: String() of a node
	// includes its children.
	var sites []site
	addSite := func(n nodes.Node, attr string, index int) int {
		line, col := leftmost(n)
		sites = append(sites, site{expr: exprString(n), attr: attr, index: index, line: line, col: col})
		return len(sites) - 1
	}
	methodTargets := map[*nodes.GetAttribute]int{}
	for _, c := range calls {
		if g, ok := c.Func.(*nodes.GetAttribute); ok {
			methodTargets[g] = addSite(g, g.Attribute, g.Index)
		}
	}
	attrSites := make([]int, len(attrs))
	for i, g := range attrs {
		if _, ok := methodTargets[g]; !ok {
			attrSites[i] = addSite(g, g.Attribute, g.Index)
		}
	}
	binopSites := make([]int, len(binops))
	for i, b := range binops {
		binopSites[i] = addSite(b.b, b.b.Operator.Token.Val, 0)
	}
	itemSites := make([]int, len(items))
	var unguarded []*nodes.GetItem
	for i, g := range items {
		itemSites[i] = addSite(g, "", 0)
	}

	// Operations first: the rewrites below read the fields they set.
	for i, b := range binops {
		at := b.b.Left.Position()
		b.set(reflect.ValueOf(&nodes.Call{
			Location: at,
			Func:     &nodes.Name{Name: &tokens.Token{Type: tokens.Name, Val: binopGuardName, Line: at.Line, Col: at.Col}},
			Args:     []nodes.Expression{b.b.Left, b.b.Right, intNode(binopSites[i], at)},
			Kwargs:   map[string]nodes.Expression{},
		}))
	}
	for _, c := range calls {
		g, ok := c.Func.(*nodes.GetAttribute)
		if !ok {
			continue
		}
		at := c.Location
		if at == nil {
			at = g.Location
		}
		c.Func = &nodes.Name{Name: &tokens.Token{Type: tokens.Name, Val: methodCallName, Line: at.Line, Col: at.Col}}
		c.Args = append([]nodes.Expression{g.Node.(nodes.Expression), intNode(methodTargets[g], at)}, c.Args...)
		c.Parent = nil
	}
	for i, g := range attrs {
		if _, ok := methodTargets[g]; !ok {
			g.Node = guardCall(attrGuardName, g.Node, attrSites[i])
		}
	}
	for i, g := range items {
		if isIntLiteral(g.Arg) {
			// x[0] never reaches Go members (gonja falls back to
			// attributes only for string keys); an out-of-range index is
			// reported from gonja's message, see Template.fallback.
			unguarded = append(unguarded, g)
			continue
		}
		at := g.Node.Position()
		g.Node = &nodes.Call{
			Location: at,
			Func:     &nodes.Name{Name: &tokens.Token{Type: tokens.Name, Val: itemGuardName, Line: at.Line, Col: at.Col}},
			Args:     []nodes.Expression{g.Node.(nodes.Expression), g.Arg.(nodes.Expression), intNode(itemSites[i], at)},
			Kwargs:   map[string]nodes.Expression{},
		}
	}
	for _, o := range outputs {
		o.Expression = guardCall(outGuardName, o.Expression, -1).(nodes.Expression)
		if o.Alternative != nil {
			o.Alternative = guardCall(outGuardName, o.Alternative, -1).(nodes.Expression)
		}
	}
	for _, l := range loops {
		countLoopPasses(l)
	}
	// gonja names an unguarded access by the String() of its rewritten node.
	fallback := map[string]site{}
	for i, g := range items {
		if slices.Contains(unguarded, g) {
			if _, dup := fallback[g.String()]; !dup {
				fallback[g.String()] = sites[itemSites[i]]
			}
		}
	}
	mentioned := make([]string, 0, len(names))
	for n := range names {
		mentioned = append(mentioned, n)
	}
	free := map[string]*tokens.Token{}
	for n, at := range nameAt {
		if !bound[n] {
			free[n] = at
		}
	}
	return &tree{sites: sites, names: mentioned, fallback: fallback, free: free}, nil
}

// tree is what guardTree learned about a template.
type tree struct {
	sites    []site
	names    []string                 // names the template mentions
	fallback map[string]site          // unguarded accesses by gonja's String() of them
	free     map[string]*tokens.Token // names read but not bound by the template, at their first use
}

func isIntLiteral(n nodes.Node) bool {
	switch x := n.(type) {
	case *nodes.Integer:
		return true
	case *nodes.UnaryExpression:
		_, ok := x.Term.(*nodes.Integer)
		return ok
	}
	return false
}

func guardCall(name string, target nodes.Node, siteIndex int) nodes.Node {
	at := target.Position()
	args := []nodes.Expression{target.(nodes.Expression)}
	if siteIndex >= 0 {
		args = append(args, intNode(siteIndex, at))
	}
	return &nodes.Call{
		Location: at,
		Func:     &nodes.Name{Name: &tokens.Token{Type: tokens.Name, Val: name, Line: at.Line, Col: at.Col}},
		Args:     args,
		Kwargs:   map[string]nodes.Expression{},
	}
}

func intNode(i int, at *tokens.Token) *nodes.Integer {
	return &nodes.Integer{Location: &tokens.Token{Type: tokens.Integer, Val: fmt.Sprint(i), Line: at.Line, Col: at.Col}, Val: i}
}

// leftmost is the position where an access chain like a.b[0].c starts.
func leftmost(n nodes.Node) (int, int) {
	for {
		switch x := n.(type) {
		case *nodes.GetAttribute:
			n = x.Node
		case *nodes.GetItem:
			n = x.Node
		case *nodes.GetSlice:
			n = x.Node
		case *nodes.Call:
			n = x.Func
		default:
			p := n.Position()
			return p.Line, p.Col
		}
	}
}

// attrGuard is podflow:attr(target, site).
func (st *renderState) attrGuard(args *exec.VarArgs) *exec.Value {
	target, s := args.Args[0], st.sites[args.Args[1].Integer()]
	if target.IsNil() {
		return st.fail(s, fmt.Sprintf("undefined: %q ('None' has no attribute %q)", s.expr, s.name()))
	}
	safe := hideGoMembers(target)
	if _, found := safe.GetAttribute(s.attr); found && s.attr != "" {
		return safe
	}
	var key any = s.attr
	if s.attr == "" {
		key = s.index
	}
	if _, found := safe.GetItem(key); found {
		return safe
	}
	return st.fail(s, fmt.Sprintf("undefined: %q%s", s.expr, notJSONHint(target)))
}

// itemGuard is podflow:item(target, key, site).
func (st *renderState) itemGuard(args *exec.VarArgs) *exec.Value {
	target, key, s := args.Args[0], args.Args[1], st.sites[args.Args[2].Integer()]
	if target.IsNil() {
		return st.fail(s, fmt.Sprintf("undefined: %q ('None' is not subscriptable)", s.expr))
	}
	safe := hideGoMembers(target)
	var k any
	switch {
	case key.IsString():
		k = key.String()
	case key.IsInteger():
		k = key.Integer()
	default:
		return safe // gonja reports the bad key type
	}
	if _, found := safe.GetItem(k); found {
		return safe
	}
	if name, ok := k.(string); ok {
		if _, found := safe.GetAttribute(name); found {
			return safe
		}
		return st.fail(s, fmt.Sprintf("undefined: %q%s", s.expr, notJSONHint(target)))
	}
	return st.fail(s, fmt.Sprintf("undefined: %q", s.expr))
}

func (s site) name() string {
	if s.attr != "" {
		return s.attr
	}
	return fmt.Sprint(s.index)
}

// outGuard is podflow:out(value): what {{ }} prints, as Airflow prints it.
// What it prints is charged to the render budget (also inside macros and
// {% set %} blocks, whose output does not reach the render's writer).
func (st *renderState) outGuard(args *exec.VarArgs) *exec.Value {
	v := args.Args[0]
	var out *exec.Value
	switch x := v.Interface().(type) {
	case nil:
		if v.IsNil() {
			return exec.AsValue("None")
		}
	case float64:
		return exec.AsValue(pyFloat(x))
	case pyList, pyDict, []any, map[string]any, exec.ValuesList, *exec.Dict:
		if err := st.check(sizeOf(v, float64(st.left)), "printed value"); err != nil {
			return exec.AsValue(st.failFunc(err))
		}
		out = exec.AsValue(pyRepr(x))
	}
	if out == nil && v.IsCallable() {
		return exec.AsValue("<function>")
	}
	if out == nil {
		out = v
	}
	if out.IsString() {
		if err := st.charge(float64(len(out.String())), "printed value"); err != nil {
			return exec.AsValue(st.failFunc(err))
		}
	}
	return out
}

// printed is the text of a list or dict as {{ }} prints it.
func printed(v *exec.Value) string {
	switch x := v.Interface().(type) {
	case pyList, pyDict, []any, map[string]any, exec.ValuesList, *exec.Dict:
		return pyRepr(x)
	}
	return v.String()
}

// hideGoMembers returns v unchanged when attribute lookup on it cannot reach
// Go methods or struct fields, and otherwise wraps it so that only item
// lookup (map keys, list indexes) remains.
func hideGoMembers(v *exec.Value) *exec.Value {
	if v.IsNil() || isTemplateValue(v.Interface()) {
		return v
	}
	t := v.Val.Type()
	if t.NumMethod() == 0 && t.Kind() != reflect.Struct &&
		(t.Kind() != reflect.Pointer || (t.Elem().NumMethod() == 0 && t.Elem().Kind() != reflect.Struct)) {
		return v
	}
	return exec.AsValue(&itemsOnly{v: v})
}

// isTemplateValue reports whether attribute lookup on v is answered by v's
// own GetAttribute — ours, or gonja's loop and groupby values — which gonja
// consults before any reflection.
func isTemplateValue(v any) bool {
	_, ok := v.(exec.AttributeGetter)
	return ok
}

// itemsOnly exposes a gonja value's items but none of its Go members.
type itemsOnly struct{ v *exec.Value }

func (o *itemsOnly) GetAttribute(string) (*exec.Value, bool) { return exec.AsValue(nil), false }
func (o *itemsOnly) GetItem(key any) (*exec.Value, bool) {
	switch o.v.Interface().(type) {
	case *exec.Dict, exec.ValuesList:
	default:
		if k := o.v.Val.Kind(); k != reflect.Map && k != reflect.Slice && k != reflect.Array && k != reflect.String {
			return exec.AsValue(nil), false
		}
	}
	return o.v.GetItem(key)
}
func (o *itemsOnly) String() string { return o.v.String() }

// fail records why a guard failed (gonja flattens errors returned by
// functions into strings) and returns the error as a value.
func (st *renderState) fail(s site, msg string) *exec.Value {
	err := &RenderError{Msg: msg, Line: s.line, Column: s.col}
	st.failure = err
	return exec.AsValue(err)
}

// methodCall is podflow:method(target, site, args...): target.name(args...)
// as Python resolves it — the built-in methods of str, int, float, bool,
// list and dict (gonja's method sets), then the function attributes of our
// own objects, then callable items of a dict. Go methods are never looked up.
func methodCall(e *exec.Evaluator, args *exec.VarArgs) *exec.Value {
	st := stateFrom(e)
	target, s := args.Args[0], st.sites[args.Args[1].Integer()]
	call := &exec.VarArgs{Args: args.Args[2:], KwArgs: args.KwArgs}
	if target.IsNil() {
		return st.fail(s, fmt.Sprintf("undefined: %q ('None' has no attribute %q)", s.expr, s.name()))
	}
	if target.IsString() || target.IsList() || target.IsDict() {
		if err := st.checkCall("method "+s.attr, growthMethods[s.attr], 2, target, call); err != nil {
			return st.fail(s, err.Error())
		}
	}
	if v, ok := builtinMethod(e, target, s.attr, call); ok {
		if err := st.chargeResult("method "+s.attr, target, v); err != nil {
			return st.fail(s, err.Error())
		}
		return v
	}
	if isTemplateValue(target.Interface()) {
		if fn, found := target.GetAttribute(s.attr); found {
			return st.callValue(e, s, fn, call)
		}
	} else if fn, found := hideGoMembers(target).GetItem(s.attr); found {
		return st.callValue(e, s, fn, call)
	}
	return st.fail(s, fmt.Sprintf("undefined: %q", s.expr))
}

// growthMethods are the str methods whose result can be much larger than
// their input.
var growthMethods = map[string]bool{
	"center": true, "ljust": true, "rjust": true, "zfill": true, "expandtabs": true,
	"join": true, "replace": true, "format": true, "format_map": true,
}

func builtinMethod(e *exec.Evaluator, parent *exec.Value, name string, args *exec.VarArgs) (*exec.Value, bool) {
	m := e.Environment.Methods
	var (
		result any
		err    error
	)
	switch {
	case parent.IsString():
		f, ok := m.Str.Get(name)
		if !ok {
			return nil, false
		}
		result, err = f(parent.String(), parent, args)
	case parent.IsBool():
		f, ok := m.Bool.Get(name)
		if !ok {
			return nil, false
		}
		result, err = f(parent.Bool(), parent, args)
	case parent.IsFloat():
		f, ok := m.Float.Get(name)
		if !ok {
			return nil, false
		}
		result, err = f(parent.Float(), parent, args)
	case parent.IsInteger():
		f, ok := m.Int.Get(name)
		if !ok {
			return nil, false
		}
		result, err = f(parent.Integer(), parent, args)
	case parent.IsDict():
		f, ok := m.Dict.Get(name)
		if !ok {
			return nil, false
		}
		goMap, ok := parent.ToGoSimpleType(false).(map[string]any)
		if !ok {
			return exec.AsValue(fmt.Errorf("%s(): dict keys must be strings", name)), true
		}
		result, err = f(goMap, parent, args)
	case parent.IsList():
		f, ok := m.List.Get(name)
		if !ok {
			return nil, false
		}
		goList, ok := parent.ToGoSimpleType(false).([]any)
		if !ok {
			return exec.AsValue(fmt.Errorf("%s(): list holds values that cannot be used", name)), true
		}
		result, err = f(goList, parent, args)
	default:
		return nil, false
	}
	if err != nil {
		return exec.AsValue(fmt.Errorf("%s(): %w", name, err)), true
	}
	return exec.ToValue(result), true
}

// callValue calls a function value found as an attribute or item.
func (st *renderState) callValue(e *exec.Evaluator, s site, fn *exec.Value, args *exec.VarArgs) *exec.Value {
	var (
		result any
		err    error
	)
	switch f := fn.Interface().(type) {
	case pyFunc:
		result, err = f(args)
	case func(*exec.Evaluator, *exec.VarArgs) (any, error):
		result, err = f(e, args)
	case exec.Macro:
		return f(args)
	case func(*exec.VarArgs) *exec.Value:
		return f(args)
	default:
		return st.fail(s, fmt.Sprintf("%q is not callable", s.expr))
	}
	if err != nil {
		return exec.AsValue(st.failFunc(err))
	}
	return exec.ToValue(result)
}
