package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"sort"
	"strings"
	"time"
)

// pageNames are the templates in templates/, each rendered inside
// layout.html.
var pageNames = []string{"dags", "grid", "graph", "trigger", "source", "run", "task", "log", "audit", "pools", "login", "error", "assets"}

func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// stateGlyphs give each state a shape as well as a colour, so the state
// reads without colour vision too.
var stateGlyphs = map[string]string{
	"success": "✓", "failed": "✗", "running": "▶", "queued": "⋯", "scheduled": "◷", "deferred": "‖",
	"up_for_retry": "↻", "upstream_failed": "⊘", "skipped": "⤼", "none": "·", "": " ",
}

var funcs = template.FuncMap{
	"glyph": func(state any) string { return stateGlyphs[fmt.Sprint(state)] },
	"str":   func(v any) string { return fmt.Sprint(v) },
	"esc":   url.PathEscape,
	"qesc":  url.QueryEscape,
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if v == nil {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		}
		return "—"
	},
	"duration": func(start, end *time.Time) string {
		if start == nil {
			return "—"
		}
		e := time.Now()
		if end != nil {
			e = *end
		}
		return Duration(e.Sub(*start))
	},
	"seconds": func(s *float32) string {
		if s == nil {
			return "—"
		}
		return Duration(time.Duration(float64(*s) * float64(time.Second)))
	},
	"json": func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	},
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"short": func(s any) string {
		v := fmt.Sprint(s)
		if p, ok := s.(*string); ok {
			if p == nil {
				return ""
			}
			v = *p
		}
		if len(v) > 12 {
			return v[:12]
		}
		return v
	},
	"add":    func(a, b int) int { return a + b },
	"active": func(s any) bool { return activeTask(fmt.Sprint(s)) },
	"edge": func(e Edge) string {
		return fmt.Sprintf("M%d,%d C%d,%d %d,%d %d,%d", e.X1, e.Y1, e.X1+e.CX, e.Y1, e.X2-e.CX, e.Y2, e.X2, e.Y2)
	},
	"runs": func(runs any) any { return runs },
}

// Duration is d for people: 1h02m, 3m05s, 4.2s, 120ms.
func Duration(d time.Duration) string {
	switch {
	case d < 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// Params turns a DAG's params into typed form fields: the type comes from
// the default (a number field for a number, a checkbox for a boolean, a
// JSON field for a list or object), sorted by name.
func Params(params map[string]any) []param {
	out := make([]param, 0, len(params))
	for name, v := range params {
		p := param{Name: name}
		switch x := v.(type) {
		case bool:
			p.Kind, p.Checked = "boolean", x
		case float64:
			p.Kind, p.Value = "number", fmt.Sprint(x)
			if x == math.Trunc(x) && math.Abs(x) < 1e15 {
				p.Kind = "integer"
			}
		case int, int64:
			p.Kind, p.Value = "integer", fmt.Sprint(x)
		case string:
			p.Kind, p.Value = "string", x
		default:
			b, _ := json.Marshal(x)
			p.Kind, p.Value = "json", string(b)
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Token is a piece of a highlighted line; Class "" is plain text.
type Token struct{ Class, Text string }

// HighlightedLine is one line of a DAG file, split into tokens.
type HighlightedLine struct {
	N      int
	Tokens []Token
}

// HighlightYAML splits a DAG file into lines of classed tokens: comments,
// mapping keys, quoted strings, numbers and booleans, and {{ templates }}.
// It is a display aid, not a parser: anything unusual stays plain text.
func HighlightYAML(src string) []HighlightedLine {
	lines := strings.Split(strings.TrimSuffix(src, "\n"), "\n")
	out := make([]HighlightedLine, 0, len(lines))
	for i, l := range lines {
		out = append(out, HighlightedLine{N: i + 1, Tokens: highlightLine(l)})
	}
	return out
}

func highlightLine(l string) []Token {
	var toks []Token
	rest := l
	trimmed := strings.TrimLeft(rest, " -")
	indent := rest[:len(rest)-len(trimmed)]
	if indent != "" {
		toks = append(toks, Token{Text: indent})
	}
	rest = trimmed
	if strings.HasPrefix(rest, "#") {
		return append(toks, Token{"c", rest})
	}
	if k, v, ok := cutKey(rest); ok {
		toks = append(toks, Token{"k", k}, Token{Text: ":"})
		rest = v
	}
	return append(toks, valueTokens(rest)...)
}

// cutKey finds a plain "key:" at the start of a line.
func cutKey(s string) (key, rest string, ok bool) {
	for i, r := range s {
		switch {
		case r == ':' && i > 0 && (i+1 == len(s) || s[i+1] == ' '):
			return s[:i], s[i+1:], true
		case r == ' ' || r == '"' || r == '\'' || r == '{' || r == '[' || r == '#':
			return "", s, false
		}
	}
	return "", s, false
}

func valueTokens(s string) []Token {
	var toks []Token
	for s != "" {
		switch {
		case strings.HasPrefix(s, " #"):
			return append(toks, Token{"c", s})
		case strings.HasPrefix(s, "{{"):
			end := strings.Index(s, "}}")
			if end < 0 {
				return append(toks, Token{Text: s})
			}
			toks = append(toks, Token{"t", s[:end+2]})
			s = s[end+2:]
		case s[0] == '"' || s[0] == '\'':
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				return append(toks, Token{"s", s})
			}
			toks = append(toks, Token{"s", s[:end+2]})
			s = s[end+2:]
		default:
			word := s
			if next := strings.IndexAny(s[1:], "\"'{"); next >= 0 {
				word = s[:next+1]
			}
			if c := strings.Index(word, " #"); c > 0 {
				word = word[:c]
			}
			cls := ""
			switch strings.TrimSpace(word) {
			case "true", "false", "null", "yes", "no":
				cls = "n"
			default:
				if isNumber(strings.TrimSpace(word)) {
					cls = "n"
				}
			}
			toks = append(toks, Token{cls, word})
			s = s[len(word):]
		}
	}
	return toks
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r >= '0' && r <= '9' || r == '.' || (i == 0 && r == '-')) {
			return false
		}
	}
	return true
}
