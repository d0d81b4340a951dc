package dag

import (
	"sort"

	"gopkg.in/yaml.v3"
)

// Kind is the YAML type an operator option accepts.
type Kind int

const (
	KindAny        Kind = iota // anything; Check does the work
	KindString                 // scalar string (numbers are accepted and kept as text)
	KindInt                    // integer
	KindBool                   // true/false
	KindDuration               // "30s", "5m", "1h30m" or plain seconds
	KindStringList             // list of strings
	KindStringMap              // mapping of string to string
	KindList                   // any list
	KindMap                    // any mapping
	KindIntList                // int or list of ints (e.g. skip_on_exit_code)
)

// String names the kind the way error messages say it ("key wants a string").
func (k Kind) String() string {
	switch k {
	case KindString:
		return "a string"
	case KindInt:
		return "an integer"
	case KindBool:
		return "a boolean"
	case KindDuration:
		return "a duration (e.g. 30s, 5m, 1h30m or seconds)"
	case KindStringList:
		return "a list of strings"
	case KindStringMap:
		return "a mapping of strings"
	case KindList:
		return "a list"
	case KindMap:
		return "a mapping"
	case KindIntList:
		return "an integer or a list of integers"
	}
	return "any value"
}

// Option declares one operator option.
type Option struct {
	Name     string
	Kind     Kind
	Required bool
	// Templated marks options whose strings (also nested inside lists and
	// mappings) are Jinja templates; they are parsed at validation time.
	Templated bool
	// Check validates the option's node further (e.g. a strict decode into a
	// Kubernetes type). Errors carry the node's file position; Path is filled
	// in by the parser.
	Check func(node *yaml.Node) []*Error
}

// OperatorSchema is what an operator declares about its options, so the
// parser can validate a task without knowing the operator.
type OperatorSchema struct {
	Name    string
	Options []Option
	// Validate runs after the per-option checks, for rules across options.
	Validate func(t *Task) []*Error
	// KeepNodes: the operator decodes its options from their YAML nodes
	// when it runs (Task.Nodes, for typed decoding with positions). Other
	// operators' tasks lose their nodes once the file is validated: a
	// scheduler holds every DAG's current version, and the nodes were a
	// third of a bash task's memory.
	KeepNodes bool
}

// Option returns the named option's declaration.
func (s *OperatorSchema) Option(name string) (Option, bool) {
	for _, o := range s.Options {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// Registry maps operator names to their schemas. Build one per process and
// hand it to the Parser.
type Registry struct {
	schemas map[string]*OperatorSchema
}

// NewRegistry returns a registry holding the given schemas.
func NewRegistry(schemas ...*OperatorSchema) *Registry {
	r := &Registry{schemas: map[string]*OperatorSchema{}}
	for _, s := range schemas {
		r.Register(s)
	}
	return r
}

// Register adds or replaces an operator schema.
func (r *Registry) Register(s *OperatorSchema) { r.schemas[s.Name] = s }

// Lookup returns the schema for an operator name.
func (r *Registry) Lookup(name string) (*OperatorSchema, bool) {
	s, ok := r.schemas[name]
	return s, ok
}

// Names lists the registered operators, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.schemas))
	for n := range r.schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
