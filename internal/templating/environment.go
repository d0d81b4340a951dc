package templating

import (
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlstructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/logging"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
)

// Sandbox limits. They bound what one render can allocate or how long it
// can loop; Airflow templates in practice stay far below them.
const (
	maxRangeItems   = 10_000   // range(n) and friends
	maxWidthArg     = 10_000   // width/length arguments of padding filters and str methods
	maxOutputBytes  = 4 << 20  // one rendered template
	maxRepeatBytes  = 1 << 20  // 'x' * n
	maxMacroCalls   = 10_000   // macro calls in one render
	maxGrowthBytes  = 64 << 20 // bound on one string-building filter or method call
	rootTemplateKey = "podflow-template"
)

// sandbox is the one gonja environment every template is compiled and
// rendered with. It is built once and never mutated afterwards: gonja reads
// its filter, test and control-structure sets under their own locks, so
// concurrent renders can share it.
type sandbox struct {
	config  *config.Config
	env     *exec.Environment
	globals *exec.Context // read-only after construction
}

var (
	sandboxOnce sync.Once
	sharedBox   *sandbox
)

func theSandbox() *sandbox {
	sandboxOnce.Do(func() { sharedBox = newSandbox() })
	return sharedBox
}

func newSandbox() *sandbox {
	// gonja logs through the global logrus logger whenever its own global
	// flag (gonja/v2/logging) is on. gonja offers no per-template logger, so
	// the flag is switched off here, once (sandboxOnce); it is off by default
	// too. We do not call gonja.SetLoggerOutput: that would also change
	// logrus' output for the whole process.
	logging.SetEnabled(false)
	cfg := config.New()
	cfg.StrictUndefined = true
	cfg.AutoEscape = false

	return &sandbox{
		config:  cfg,
		globals: newGlobals(),
		env: &exec.Environment{
			// Globals are per render (see renderContext); the shared
			// environment only carries an empty root.
			Context:           exec.EmptyContext(),
			Filters:           sandboxFilters(),
			Tests:             exec.NewTestSet(map[string]exec.TestFunction{}).Update(builtins.Tests),
			ControlStructures: sandboxControlStructures(),
			Methods:           sandboxMethods(),
		},
	}
}

// sandboxControlStructures keeps gonja's statements except those that read
// other templates (include, import, from, extends) or expose template
// inheritance (block, whose self.<block>() can recurse without bound), and
// wraps macro so that recursion is refused.
func sandboxControlStructures() *exec.ControlStructureSet {
	set := exec.NewControlStructureSet(map[string]parser.ControlStructureParser{}).Update(controlstructures.All)
	for _, name := range []string{"include", "import", "from", "extends", "block"} {
		mustReplace(set.Replace(name, refusedStatement(name)))
	}
	inner, _ := controlstructures.All.Get("macro")
	mustReplace(set.Replace("macro", guardedMacroParser(inner)))
	forParser, _ := controlstructures.All.Get("for")
	mustReplace(set.Replace("for", nonRecursiveFor(forParser)))
	for _, name := range controlStructureNames {
		if inner, ok := set.Get(name); ok {
			mustReplace(set.Replace(name, positionedErrors(inner)))
		}
	}
	return set
}

// nonRecursiveFor refuses `{% for ... recursive %}`: loop(items) re-renders
// the body without any depth bound, and `loop([1])` inside the body would
// recurse until the Go stack overflows, which kills the process.
func nonRecursiveFor(inner parser.ControlStructureParser) parser.ControlStructureParser {
	return func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		first := args.Current()
		cs, err := inner(p, args)
		if err != nil {
			return nil, err
		}
		if f, ok := cs.(*controlstructures.ForControlStructure); ok && f.Recursive {
			return nil, p.Error("recursive for loops are not allowed in podflow templates", first)
		}
		return cs, nil
	}
}

// controlStructureNames lists gonja's statements (its set cannot be
// enumerated).
var controlStructureNames = []string{
	"autoescape", "block", "extends", "filter", "for", "from", "if", "import", "include",
	"macro", "raw", "set", "with", "do", "break", "continue", "trans", "call",
}

// positionedErrors gives a position to the syntax errors gonja reports
// without one (an expression that ends too early inside {% %}): the first
// token of the statement's arguments.
func positionedErrors(inner parser.ControlStructureParser) parser.ControlStructureParser {
	return func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		first := args.Current()
		cs, err := inner(p, args)
		var se *parser.SyntaxError
		if err != nil && errors.As(err, &se) && se.Line == 0 && first != nil && first.Line > 0 {
			se.Line, se.Column = first.Line, first.Col
		}
		return cs, err
	}
}

func refusedStatement(name string) parser.ControlStructureParser {
	return func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		at := args.Current()
		if at == nil || at.Line == 0 {
			at = p.Current()
		}
		return nil, p.Error(fmt.Sprintf("{%% %s %%} is not allowed in podflow templates (templates cannot load other files)", name), at)
	}
}

func mustReplace(err error) {
	if err != nil {
		panic(fmt.Sprintf("templating: build sandbox: %v", err))
	}
}

// guardedMacroParser parses a macro with gonja's parser and wraps the result
// so that calling the macro while it is already running is an error instead
// of a Go stack overflow (which would kill the process).
func guardedMacroParser(inner parser.ControlStructureParser) parser.ControlStructureParser {
	return func(p *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		cs, err := inner(p, args)
		if err != nil {
			return nil, err
		}
		mcs, ok := cs.(*controlstructures.MacroControlStructure)
		if !ok {
			return nil, fmt.Errorf("templating: unexpected macro node %T", cs)
		}
		return &guardedMacro{MacroControlStructure: mcs, literal: literalBytes(mcs.Macro)}, nil
	}
}

type guardedMacro struct {
	*controlstructures.MacroControlStructure
	literal int // bytes of literal text in the body, charged per call
}

func (g *guardedMacro) Execute(r *exec.Renderer, tag *nodes.ControlStructureBlock) error {
	macro, err := exec.MacroNodeToFunc(g.Macro, r)
	if err != nil {
		return fmt.Errorf("define macro %q: %w", g.Name, err)
	}
	st := stateOf(r.Environment.Context)
	if st == nil {
		return errors.New("templating: render state missing")
	}
	node := g.Macro
	name := g.Name
	guarded := exec.Macro(func(params *exec.VarArgs) *exec.Value {
		if st.activeMacros == nil {
			st.activeMacros = map[any]bool{}
		}
		if st.activeMacros[node] {
			return exec.AsValue(st.failFunc(&sandboxError{msg: fmt.Sprintf("recursive call of macro %q refused", name)}))
		}
		st.macroCalls++
		if st.macroCalls > maxMacroCalls {
			return exec.AsValue(st.failFunc(&sandboxError{msg: fmt.Sprintf("more than %d macro calls in one render", maxMacroCalls)}))
		}
		if err := st.charge(float64(g.literal), fmt.Sprintf("output of macro %q", name)); err != nil {
			return exec.AsValue(st.failFunc(err))
		}
		st.activeMacros[node] = true
		defer delete(st.activeMacros, node)
		return macro(params)
	})
	r.Environment.Context.Set(name, guarded)
	return nil
}

// sandboxFilters is gonja's filter set with tojson made Airflow-compatible
// and the filters that take a width capped, so that no argument can make a
// render allocate gigabytes.
func sandboxFilters() *exec.FilterSet {
	set := exec.NewFilterSet(map[string]exec.FilterFunction{}).Update(builtins.Filters)
	mustReplace(set.Replace("tojson", filterToJSON))
	for _, name := range []string{"batch", "slice"} {
		inner, _ := set.Get(name)
		mustReplace(set.Replace(name, cappedFilter(name, inner)))
	}
	// These look attributes up by name (map(attribute='x'), attr('x')) with
	// gonja's reflection-based Value.GetAttribute; giving them our values
	// first means a dict literal's Go methods cannot be reached that way.
	for _, name := range []string{"attr", "groupby", "join", "map", "max", "min", "rejectattr", "selectattr", "sort", "sum", "unique"} {
		inner, _ := set.Get(name)
		mustReplace(set.Replace(name, func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
			if in.IsError() {
				return inner(e, in, params)
			}
			return inner(e, exec.AsValue(toPython(in.Interface())), params)
		}))
	}
	mustReplace(set.Replace("pprint", filterPPrint))
	mustReplace(set.Register("shell_quote", filterShellQuote))
	mustReplace(set.Register("fromjson", filterFromJSON))
	// The budget is checked after the fixed limits below: their errors say
	// more precisely what is wrong.
	for _, name := range filterNames {
		inner, ok := set.Get(name)
		if !ok {
			panic(fmt.Sprintf("templating: build sandbox: no filter %q", name))
		}
		mustReplace(set.Replace(name, budgetedFilter(name, inner)))
	}
	format, _ := set.Get("format")
	mustReplace(set.Replace("format", func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if hugeFormatWidth(in.String()) {
			return exec.AsValue(&sandboxError{msg: "format width too large"})
		}
		if err := checkFormatVerbs(in.String()); err != nil {
			return exec.AsValue(err)
		}
		return format(e, in, plainArgs(params))
	}))
	// Registered after the wrappers above so that the checks run before them.
	for _, name := range []string{"center", "format", "indent", "join", "replace", "truncate", "wordwrap", "urlize"} {
		inner, _ := set.Get(name)
		mustReplace(set.Replace(name, func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
			if err := checkGrowth(name, in, params); err != nil {
				return exec.AsValue(err)
			}
			return inner(e, in, params)
		}))
	}
	return set
}

// checkGrowth refuses a string-building call whose result could exceed
// maxGrowthBytes ('{0}{0}…'.format(big), text|replace('x', big),
// lines|indent(9999)). The result is bounded by
// (size(input)+1) × (1 + Σ size(argument)), integer arguments counting as
// widths; Go cannot recover from running out of memory, so the check comes
// before the call.
func checkGrowth(name string, in *exec.Value, args *exec.VarArgs) error {
	if bound := growthBound(in, args); bound > maxGrowthBytes {
		return &sandboxError{msg: fmt.Sprintf("%s: result could reach %.0f bytes, over the limit of %d", name, bound, maxGrowthBytes)}
	}
	return nil
}

// growthBoundOf is growthBound, and for format also counts the widths in
// the format string: '{0:9999}' * 130000 pads one letter to 1.3 GB.
func growthBoundOf(name string, in *exec.Value, args *exec.VarArgs) float64 {
	bound := growthBound(in, args)
	if name == "format" || name == "format_map" {
		bound = max(bound, formatBound(in, args))
	}
	return bound
}

// formatWidthRe finds the numbers in a format string (widths, precisions).
var formatFieldRe = regexp.MustCompile(`\{[^{}]*\}|%[-+# 0]*\d*(\.\d*)?[a-zA-Z]`)
var formatNumberRe = regexp.MustCompile(`\d+`)

// formatBound bounds str.format's and printf's result: the format string,
// plus for every field its largest width and all the arguments.
func formatBound(in *exec.Value, args *exec.VarArgs) float64 {
	format := in.String()
	argBytes := 0.0
	for _, a := range args.Args {
		argBytes += valueSize(a, 0)
	}
	for _, a := range args.KwArgs {
		argBytes += valueSize(a, 0)
	}
	bound := float64(len(format))
	for _, field := range formatFieldRe.FindAllString(format, -1) {
		width := 0.0
		for _, num := range formatNumberRe.FindAllString(field, -1) {
			if len(num) > 9 {
				return math.Inf(1)
			}
			n, _ := strconv.Atoi(num)
			width = max(width, float64(n))
		}
		bound += width + argBytes
	}
	return bound
}

// growthBound is checkGrowth's bound on the result of a string-building call.
func growthBound(in *exec.Value, args *exec.VarArgs) float64 {
	factor := 1.0
	for _, a := range args.Args {
		factor += valueSize(a, 0)
	}
	for _, a := range args.KwArgs {
		factor += valueSize(a, 0)
	}
	return (valueSize(in, 0) + 1) * factor
}

// valueSize is a value's size for checkGrowth: bytes of a string, the
// magnitude of an integer, the summed sizes of a list's or dict's items.
func valueSize(v *exec.Value, depth int) float64 {
	switch {
	case v == nil || v.IsNil():
		return 1
	case v.IsString():
		return float64(len(v.String()))
	case v.IsInteger():
		return math.Abs(float64(v.Integer()))
	case v.IsList() || v.IsDict():
		if depth > 20 {
			return maxGrowthBytes
		}
		total := 0.0
		v.Iterate(func(_, _ int, key, value *exec.Value) bool {
			total += valueSize(key, depth+1) + 1
			if value != nil {
				total += valueSize(value, depth+1)
			}
			return true
		}, func() {})
		return total
	}
	return 24
}

func cappedFilter(name string, inner exec.FilterFunction) exec.FilterFunction {
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if err := checkWidthArgs(name, params); err != nil {
			return exec.AsValue(err)
		}
		return inner(e, in, params)
	}
}

func checkWidthArgs(name string, params *exec.VarArgs) error {
	check := func(v *exec.Value) error {
		if v.IsInteger() && (v.Integer() > maxWidthArg || v.Integer() < -maxWidthArg) {
			return &sandboxError{msg: fmt.Sprintf("%s: argument %d exceeds the sandbox limit of %d", name, v.Integer(), maxWidthArg)}
		}
		return nil
	}
	for _, a := range params.Args {
		if err := check(a); err != nil {
			return err
		}
	}
	for _, a := range params.KwArgs {
		if err := check(a); err != nil {
			return err
		}
	}
	return nil
}

// hugeFormatRe finds printf ("%99999d") or str.format ("{:>99999}") widths of
// five digits or more.
var hugeFormatRe = regexp.MustCompile(`(%[-+ #0]*\d{5,})|(\{[^{}]*:[^{}]*\d{5,}[^{}]*\})`)

func hugeFormatWidth(format string) bool { return hugeFormatRe.MatchString(format) }

// strMethodNames lists gonja's str methods (gonja offers no way to enumerate
// a MethodSet); the ones that pad to a width are capped.
var strMethodNames = []string{
	"capitalize", "capwords", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find",
	"format", "format_map", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "islower",
	"isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
	"partition", "removeprefix", "removesuffix", "replace", "rfind", "rjust", "rpartition", "rsplit",
	"rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
}

func sandboxMethods() exec.Methods {
	all := builtins.Methods
	str := map[string]exec.Method[string]{}
	for _, name := range strMethodNames {
		m, ok := all.Str.Get(name)
		if !ok {
			continue
		}
		switch name {
		case "center", "ljust", "rjust", "zfill", "expandtabs", "join", "replace":
			str[name] = func(self string, sv *exec.Value, args *exec.VarArgs) (any, error) {
				if err := checkGrowth(name, sv, args); err != nil {
					return nil, err
				}
				return m(self, sv, args)
			}
		case "format", "format_map":
			str[name] = func(self string, sv *exec.Value, args *exec.VarArgs) (any, error) {
				if hugeFormatWidth(self) {
					return nil, &sandboxError{msg: "format width too large"}
				}
				args = plainArgs(args)
				if err := checkGrowth(name, sv, args); err != nil {
					return nil, err
				}
				return m(self, sv, args)
			}
		default:
			str[name] = m
		}
	}
	return exec.Methods{
		Bool:  all.Bool,
		Int:   all.Int,
		Float: all.Float,
		Str:   exec.NewMethodSet(str),
		Dict:  all.Dict,
		List:  all.List,
	}
}

// sourceLoader serves exactly one template, the one being compiled, and
// refuses every other name: no file system, no other templates.
type sourceLoader struct{ src string }

var errNoLoading = errors.New("templates cannot load other files")

func (l sourceLoader) Read(path string) (io.Reader, error) {
	if path != rootTemplateKey {
		return nil, fmt.Errorf("read %q: %w", path, errNoLoading)
	}
	return strings.NewReader(l.src), nil
}

func (l sourceLoader) Resolve(path string) (string, error) {
	return "", fmt.Errorf("resolve %q: %w", path, errNoLoading)
}

func (l sourceLoader) Inherit(from string) (loaders.Loader, error) {
	return nil, fmt.Errorf("inherit %q: %w", from, errNoLoading)
}

// sandboxError is a limit of the sandbox being hit.
type sandboxError struct{ msg string }

func (e *sandboxError) Error() string { return "sandbox: " + e.msg }
