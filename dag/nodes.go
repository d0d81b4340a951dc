package dag

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits that keep a hostile file from making the parser loop or allocate
// without bound: YAML aliases can form cycles and exponential fan-outs.
const (
	maxAliasHops   = 32      // alias -> alias -> … chains
	maxNodeDepth   = 256     // nesting of lists and mappings
	maxPlainValues = 1 << 20 // values expanded into Task.Options per file
	maxMerges      = 1 << 17 // merge keys (<<) expanded per file
)

// entry is one key/value pair of a YAML mapping.
type entry struct {
	key, value *yaml.Node // value as written (possibly an alias)
}

// name is the entry's key as text.
func (e entry) name() string { return e.key.Value }

// resolve follows aliases to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasHops; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is an explicit or implicit null.
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// entries lists the pairs of mapping m, with merge keys (<<: *anchor)
// expanded; a key written in m itself wins over a merged one. Keys given
// twice are reported.
func (f *fileParser) entries(m *yaml.Node) []entry {
	return f.entriesMerging(m, nil)
}

// entriesMerging is entries for mapping m merged into the mappings of
// path (outermost first).
func (f *fileParser) entriesMerging(m *yaml.Node, path []*yaml.Node) []entry {
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode || len(path) > maxAliasHops {
		return nil
	}
	path = append(path, m)
	var own, merged []entry
	firstLine := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, f.mergedEntries(v, path)...)
			continue
		}
		rk := resolve(k)
		if rk == nil || rk.Kind != yaml.ScalarNode {
			f.errorf(k, "mapping keys must be plain strings, got %s", describe(rk))
			continue
		}
		e := entry{key: rk, value: v}
		if rk != k {
			e.key = &yaml.Node{Kind: yaml.ScalarNode, Value: rk.Value, Line: k.Line, Column: k.Column}
		}
		if line, dup := firstLine[e.name()]; dup {
			f.errorf(k, "%s: key is given twice (first at line %d)", e.name(), line)
			continue
		}
		firstLine[e.name()] = k.Line
		own = append(own, e)
	}
	for _, e := range merged {
		if _, dup := firstLine[e.name()]; !dup {
			firstLine[e.name()] = e.key.Line
			own = append(own, e)
		}
	}
	return own
}

// mergedEntries expands the value of a merge key: a mapping or a list of
// mappings, earlier ones winning.
func (f *fileParser) mergedEntries(v *yaml.Node, path []*yaml.Node) []entry {
	if f.mergeBudget <= 0 {
		return nil
	}
	f.mergeBudget--
	if f.mergeBudget == 0 {
		f.errorf(v, "<<: too many merges (do merge keys refer to each other?)")
		return nil
	}
	rv := resolve(v)
	merge := func(at, m *yaml.Node) []entry {
		for _, p := range path {
			if p == m {
				f.errorf(at, "<<: merges a mapping into itself")
				return nil
			}
		}
		return f.entriesMerging(m, path)
	}
	switch {
	case rv != nil && rv.Kind == yaml.MappingNode:
		return merge(v, rv)
	case rv != nil && rv.Kind == yaml.SequenceNode:
		var out []entry
		for _, item := range rv.Content {
			ri := resolve(item)
			if ri == nil || ri.Kind != yaml.MappingNode {
				f.errorf(item, "<<: wants a mapping to merge, got %s", describe(ri))
				continue
			}
			out = append(out, merge(item, ri)...)
		}
		return out
	}
	f.errorf(v, "<<: wants a mapping to merge, got %s", describe(rv))
	return nil
}

// describe names what a node holds, for "wants X, got Y" messages.
func describe(n *yaml.Node) string {
	if n == nil || n.Kind == 0 {
		return "nothing"
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	case "!!timestamp":
		return "date " + n.Value
	}
	return "string " + quoteShort(n.Value)
}

// quoteShort quotes s for a message, shortened when long.
func quoteShort(s string) string {
	const max = 60
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return strconv.Quote(s)
}

// plain converts a node to a plain Go value: string, int, float64, bool,
// nil, []any or map[string]any. Dates stay text.
// key names the value in errors.
func (f *fileParser) plain(key string, n *yaml.Node) any {
	return f.plainDepth(key, n, n, 0)
}

func (f *fileParser) plainDepth(key string, root, n *yaml.Node, depth int) any {
	if f.plainBudget <= 0 {
		return nil
	}
	f.plainBudget--
	if f.plainBudget == 0 {
		f.errorf(root, "%s: the file expands to more than %d values (aliases of aliases?)", key, maxPlainValues)
		return nil
	}
	if depth > maxNodeDepth {
		if !f.tooDeep {
			f.tooDeep = true
			f.errorf(n, "%s: values nest deeper than %d levels (does an alias refer to itself?)", key, maxNodeDepth)
		}
		return nil
	}
	n = resolve(n)
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return scalarValue(n)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			out = append(out, f.plainDepth(key, root, item, depth+1))
		}
		return out
	case yaml.MappingNode:
		es := f.entries(n)
		out := make(map[string]any, len(es))
		for _, e := range es {
			out[e.name()] = f.plainDepth(key, root, e.value, depth+1)
		}
		return out
	}
	return nil
}

// scalarValue is the Go value of a scalar as YAML 1.2 resolves it.
func scalarValue(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		return strings.EqualFold(n.Value, "true")
	case "!!int":
		if i, ok := parseInt(n.Value); ok {
			return i
		}
		if x, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return x
		}
	case "!!float":
		if x, ok := parseFloat(n.Value); ok {
			return x
		}
	}
	return n.Value
}

func parseInt(s string) (int, bool) {
	i, err := strconv.ParseInt(s, 0, 64)
	if err != nil || i < math.MinInt || i > math.MaxInt {
		return 0, false
	}
	return int(i), true
}

func parseFloat(s string) (float64, bool) {
	switch strings.ToLower(strings.TrimPrefix(s, "+")) {
	case ".inf":
		return math.Inf(1), true
	case "-.inf":
		return math.Inf(-1), true
	case ".nan":
		return math.NaN(), true
	}
	x, err := strconv.ParseFloat(s, 64)
	return x, err == nil
}

// wrongType reports that key wanted one kind of value and got another.
func (f *fileParser) wrongType(key string, n *yaml.Node, want string) {
	f.errorf(n, "%s: wants %s, got %s", key, want, describe(resolve(n)))
}

// str reads a string: any scalar but null and booleans (numbers are kept
// as written).
func (f *fileParser) str(key string, n *yaml.Node) (string, bool) {
	r := resolve(n)
	if !isText(r) {
		f.wrongType(key, n, KindString.String())
		return "", false
	}
	return r.Value, true
}

// isText reports whether n is a scalar usable as text.
func isText(n *yaml.Node) bool {
	if n == nil || n.Kind != yaml.ScalarNode {
		return false
	}
	switch n.ShortTag() {
	case "!!null", "!!bool":
		return false
	}
	return true
}

// isInt reports whether n is an integer scalar.
func isInt(n *yaml.Node) bool {
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return false
	}
	_, ok := parseInt(n.Value)
	return ok
}

// integer reads an integer.
func (f *fileParser) integer(key string, n *yaml.Node) (int, bool) {
	r := resolve(n)
	if !isInt(r) {
		f.wrongType(key, n, KindInt.String())
		return 0, false
	}
	i, _ := parseInt(r.Value)
	return i, true
}

// boolean reads true or false.
func (f *fileParser) boolean(key string, n *yaml.Node) (bool, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.ScalarNode || r.ShortTag() != "!!bool" {
		f.wrongType(key, n, KindBool.String())
		return false, false
	}
	return strings.EqualFold(r.Value, "true"), true
}

// duration reads a non-negative duration: "30s", "5m", "1h30m" or plain
// seconds.
func (f *fileParser) duration(key string, n *yaml.Node) (time.Duration, bool) {
	d, ok := parseDurationNode(resolve(n))
	if !ok {
		f.wrongType(key, n, KindDuration.String())
		return 0, false
	}
	if d < 0 {
		f.errorf(n, "%s: wants a duration of zero or more, got %s", key, d)
		return 0, false
	}
	return d, true
}

// parseDurationNode parses a duration scalar.
func parseDurationNode(n *yaml.Node) (time.Duration, bool) {
	if n == nil || n.Kind != yaml.ScalarNode {
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int":
		if s, ok := parseInt(n.Value); ok && s <= math.MaxInt64/int(time.Second) && s >= math.MinInt64/int(time.Second) {
			return time.Duration(s) * time.Second, true
		}
		return 0, false
	case "!!float":
		x, ok := parseFloat(n.Value)
		if !ok || math.IsNaN(x) || math.Abs(x) > float64(math.MaxInt64/int64(time.Second)) {
			return 0, false
		}
		return time.Duration(x * float64(time.Second)), true
	case "!!str":
		return ParseDuration(n.Value)
	}
	return 0, false
}

// ParseDuration parses a DAG file duration: a Go duration such as "30s",
// "5m" or "1h30m", or a plain number of seconds ("90").
func ParseDuration(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		if secs > math.MaxInt64/int64(time.Second) || secs < math.MinInt64/int64(time.Second) {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}

// stringList reads a list of strings; each bad item is reported.
func (f *fileParser) stringList(key string, n *yaml.Node) ([]string, bool) {
	r := resolve(n)
	if r == nil || r.Kind != yaml.SequenceNode {
		f.wrongType(key, n, KindStringList.String())
		return nil, false
	}
	out := make([]string, 0, len(r.Content))
	ok := true
	for i, item := range r.Content {
		s, good := f.str(fmt.Sprintf("%s[%d]", key, i), item)
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}
