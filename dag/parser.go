package dag

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/podflow/podflow/internal/templating"
)

// Defaults of a DAG and its tasks, as in Airflow.
const (
	DefaultMaxActiveRuns  = 16
	DefaultMaxActiveTasks = 16
	DefaultRetryDelay     = 5 * time.Minute
	DefaultPool           = "default_pool"
	DefaultPriorityWeight = 1
	DefaultTriggerRule    = AllSuccess
)

// Parser turns DAG files into validated DAGs. It is safe for concurrent use
// once built; a nil Registry means no operator is known.
type Parser struct {
	// Registry declares the operators tasks may use and their options.
	Registry *Registry
	// PausedAtCreation is the default of is_paused_upon_creation
	// (podflow.yaml's dags_are_paused_at_creation, true unless set).
	PausedAtCreation bool

	locations sync.Map         // IANA name -> *time.Location; time.LoadLocation reads the disk on every call
	templates templating.Cache // templates checked, bounded in bytes

	// FileBudget bounds the time one file may take to parse when a folder
	// is loaded (DefaultFileBudget when zero): a file over it is reported
	// as an error and the others load without waiting for it.
	FileBudget time.Duration
}

// DefaultFileBudget is the time a DAG file may take to parse.
const DefaultFileBudget = 10 * time.Second

// NewParser returns a parser that validates tasks against registry.
func NewParser(registry *Registry) *Parser { return &Parser{Registry: registry} }

// MaxFileBytes bounds one DAG file: a DAG of hundreds of pod tasks is a
// few hundred KiB.
const MaxFileBytes = 1 << 20

// ParseFile reads and parses one DAG file; at most MaxFileBytes+1 bytes are
// ever read.
func (p *Parser) ParseFile(path string) (*DAG, Errors) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, Errors{{Path: path, Msg: fmt.Sprintf("read DAG file: %v", unwrapPathError(err))}}
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileBytes+1))
	if err != nil {
		return nil, Errors{{Path: path, Msg: fmt.Sprintf("read DAG file: %v", unwrapPathError(err))}}
	}
	return p.ParseBytes(path, data)
}

// unwrapPathError drops the path from an *os.PathError: the Error already
// names the file.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ParseBytes parses and validates one DAG file's contents; path is used in
// errors and kept on the DAG. It returns the DAG, or nil and every problem
// found, sorted by position.
func (p *Parser) ParseBytes(path string, data []byte) (d *DAG, errs Errors) {
	if len(data) > MaxFileBytes {
		return nil, Errors{{Path: path, Line: 1, Column: 1,
			Msg: fmt.Sprintf("the file is over %d bytes, the limit for a DAG file", MaxFileBytes)}}
	}
	f := &fileParser{
		p:              p,
		path:           path,
		src:            source{data: data},
		plainBudget:    maxPlainValues,
		templateBudget: maxPlainValues,
		mergeBudget:    maxMerges,
	}
	defer func() {
		// The parser must survive any input; a bug here should cost one
		// file, not the scheduler.
		if r := recover(); r != nil {
			f.errs = append(f.errs, &Error{Path: path, Line: 1, Column: 1,
				Msg: fmt.Sprintf("internal error while parsing this file (please report it): %v", r)})
			d, errs = nil, f.sortedErrors()
		}
	}()
	d = f.parse(data)
	if len(f.errs) > 0 {
		return nil, f.sortedErrors()
	}
	p.compact(d)
	return d, nil
}

// compact drops from a validated DAG what running it does not need: the
// YAML nodes of tasks whose operator does not decode them
// (OperatorSchema.KeepNodes), and empty option maps.
func (p *Parser) compact(d *DAG) {
	for _, t := range d.Tasks {
		if s, ok := p.lookup(t.Operator); !ok || !s.KeepNodes || len(t.Nodes) == 0 {
			t.Nodes = nil
		}
		if len(t.Options) == 0 {
			t.Options = nil
		}
	}
}

// fileParser is the state of parsing one file.
type fileParser struct {
	p              *Parser
	path           string
	src            source
	errs           Errors
	plainBudget    int
	templateBudget int
	mergeBudget    int
	tooDeep        bool
	params         map[string]any // the DAG's declared params; nil when it declares none
	groups         map[string]*groupInfo
	groupOrder     []*groupInfo // in file order
}

// errorf records a problem at node n.
func (f *fileParser) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	f.errorAt(line, col, format, args...)
}

// errorAt records a problem at a position.
func (f *fileParser) errorAt(line, col int, format string, args ...any) {
	f.errs = append(f.errs, &Error{Path: f.path, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

// addErrors records errors from an operator's checks, filling in the path
// and, where missing, the position of at.
func (f *fileParser) addErrors(at *yaml.Node, errs []*Error) {
	for _, e := range errs {
		if e == nil {
			continue
		}
		c := *e
		c.Path = f.path
		if c.Line <= 0 {
			c.Line, c.Column = at.Line, at.Column
		}
		if c.Column <= 0 {
			c.Column = 1
		}
		f.errs = append(f.errs, &c)
	}
}

// sortedErrors returns the errors by position, each once.
func (f *fileParser) sortedErrors() Errors {
	sort.SliceStable(f.errs, func(i, j int) bool {
		a, b := f.errs[i], f.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	out := f.errs[:0]
	for i, e := range f.errs {
		if i > 0 && *e == *f.errs[i-1] {
			continue
		}
		out = append(out, e)
	}
	f.errs = out
	return out
}

func (f *fileParser) parse(data []byte) *DAG {
	sum := sha256.Sum256(data)
	d := &DAG{
		MaxActiveRuns:  DefaultMaxActiveRuns,
		MaxActiveTasks: DefaultMaxActiveTasks,
		Timezone:       time.UTC,
		Params:         map[string]any{},
		Path:           f.path,
		Hash:           hex.EncodeToString(sum[:]),
		Source:         data,
	}
	root := f.document(data)
	if root == nil {
		return d
	}
	if root.Kind != yaml.MappingNode {
		f.errorf(root, "a DAG file wants a mapping with dag_id and tasks at the top, got %s", describe(root))
		return d
	}
	fields := f.fields(root, dagKeys)
	f.dagFields(d, root, fields)
	f.dagAlerts(d, fields)
	if _, declared := fields["params"]; declared {
		f.params = d.Params
	}
	defaults := f.defaultArgs(fields)
	seen := declaredIDs{}
	tasks := f.tasks(root, fields, defaults, seen)
	tasks = f.taskGroups(d, fields, defaults, seen, tasks)
	f.dependencies(tasks, fields)
	f.expandGroups(tasks)
	f.linkTasks(d, tasks)
	return d
}

// yamlLine finds the line yaml.v3 puts in its messages ("yaml: line 5: …").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserProblems are the messages of yaml.v3's parser (as opposed to
// its scanner), whose line numbers count from 0.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlAnchor finds the anchor name in yaml.v3's unknown anchor message.
var yamlAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)

// document decodes the file's single YAML document and returns its root,
// or nil after recording why there is none.
func (f *fileParser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			f.errorAt(1, 1, "the file is empty: a DAG file wants a mapping with dag_id and tasks")
			return nil
		}
		f.yamlError(err)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil && !isEmptyDocument(&extra):
		f.errorf(extra.Content[0], "a DAG file holds one YAML document; this is a second one (remove the \"---\" or split the file)")
	case err != nil && !errors.Is(err, io.EOF):
		f.yamlError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		f.errorAt(1, 1, "the file is empty: a DAG file wants a mapping with dag_id and tasks")
		return nil
	}
	return doc.Content[0]
}

// isEmptyDocument reports whether a document holds nothing (a trailing
// "---" does that).
func isEmptyDocument(doc *yaml.Node) bool {
	return len(doc.Content) == 0 || isNull(doc.Content[0])
}

// yamlError records a YAML syntax error at the line yaml.v3 names.
func (f *fileParser) yamlError(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, convErr := strconv.Atoi(m[1])
		if convErr == nil && line > 0 {
			if yamlParserProblems[m[2]] {
				// yaml.v3 numbers lines from 0 in parser errors (and
				// from 1 in scanner errors).
				line++
			}
			f.errorAt(line, 1, "invalid YAML: %s", m[2])
			return
		}
	}
	if m := yamlAnchor.FindStringSubmatch(msg); m != nil {
		line, col := f.findText("*" + m[1])
		f.errorAt(line, col, "invalid YAML: unknown anchor %q referenced", m[1])
		return
	}
	f.errorAt(1, 1, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// findText returns the position of the first occurrence of s in the file,
// or 1:1.
func (f *fileParser) findText(s string) (int, int) {
	for i := 1; ; i++ {
		line := f.src.line(i)
		if i > len(f.src.lines) {
			return 1, 1
		}
		if k := strings.Index(line, s); k >= 0 {
			return i, len([]rune(line[:k])) + 1
		}
	}
}
