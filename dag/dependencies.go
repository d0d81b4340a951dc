package dag

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// chainToken is one token of a dependency chain such as "a >> [b, c]".
type chainToken struct {
	text string
	col  int // 1-based rune column in the chain text
}

// chainLink is a step of a parsed chain: a group of ids and the operator
// that joins it to the next group (">>", "<<" or "" for the last).
type chainLink struct {
	ids []chainToken
	op  string
}

// dependencies reads the top-level `dependencies` list of Airflow-style
// chains and adds their edges to the tasks' upstreams.
func (f *fileParser) dependencies(tasks []*parsedTask, fields map[string]entry) {
	e, ok := fields["dependencies"]
	if !ok || isNull(e.value) {
		return
	}
	list := resolve(e.value)
	if list == nil || list.Kind != yaml.SequenceNode {
		f.wrongType("dependencies", e.value, "a list of chains such as \"a >> b >> c\"")
		return
	}
	byID := map[string]*parsedTask{}
	for _, t := range tasks {
		if t.ID != "" {
			byID[t.ID] = t
		}
	}
	for _, item := range list.Content {
		r := resolve(item)
		if !isText(r) {
			f.wrongType("dependencies", item, "a chain such as \"a >> b >> c\"")
			continue
		}
		links, err := parseChain(r.Value)
		if err != nil {
			line, col := f.src.scalarPosition(r, 1, err.col)
			f.errorAt(line, col, "dependencies: cannot read %s: %s", quoteShort(r.Value), err.msg)
			continue
		}
		f.chainEdges(r, links, byID)
	}
}

// chainEdges adds the edges of a parsed chain; unknown ids are reported at
// their token.
func (f *fileParser) chainEdges(item *yaml.Node, links []chainLink, byID map[string]*parsedTask) {
	ids := make([]string, 0, len(byID)+len(f.groups))
	for id := range byID {
		ids = append(ids, id)
	}
	for id := range f.groups {
		ids = append(ids, id)
	}
	known := true
	for _, l := range links {
		for _, tok := range l.ids {
			if byID[tok.text] == nil && f.groups[tok.text] == nil {
				line, col := f.src.scalarPosition(item, 1, tok.col)
				f.errorAt(line, col, "dependencies: unknown task %s%s", quoteShort(tok.text), didYouMean(tok.text, ids))
				known = false
			}
		}
	}
	if !known {
		return
	}
	for i := 0; i+1 < len(links); i++ {
		ups, downs := links[i].ids, links[i+1].ids
		if links[i].op == "<<" {
			ups, downs = downs, ups
		}
		for _, down := range downs {
			for _, up := range ups {
				line, col := f.src.scalarPosition(item, 1, up.col)
				e := edge{up: up.text, key: "dependencies", line: line, col: col}
				if t := byID[down.text]; t != nil {
					t.upstream = append(t.upstream, e)
				} else {
					g := f.groups[down.text] // a dependency of the whole group: its roots'
					g.upstream = append(g.upstream, e)
				}
			}
		}
	}
}

// chainError is a syntax error in a chain, at a rune column.
type chainError struct {
	col int
	msg string
}

// parseChain parses "a >> b", "a >> [b, c] >> d", "[a, b] >> c", "c << b".
func parseChain(s string) ([]chainLink, *chainError) {
	toks := tokenizeChain(s)
	var links []chainLink
	i := 0
	end := utf8.RuneCountInString(s) + 1
	for {
		group, next, err := parseChainGroup(toks, i, end)
		if err != nil {
			return nil, err
		}
		i = next
		if i == len(toks) {
			links = append(links, chainLink{ids: group})
			break
		}
		op := toks[i]
		if op.text != ">>" && op.text != "<<" {
			return nil, &chainError{op.col, fmt.Sprintf("wants >> or <<, got %q", op.text)}
		}
		links = append(links, chainLink{ids: group, op: op.text})
		i++
	}
	if len(links) < 2 {
		return nil, &chainError{1, "wants at least two tasks joined by >> or <<"}
	}
	return links, nil
}

// parseChainGroup parses one task id or a [list] of ids at toks[i].
func parseChainGroup(toks []chainToken, i, end int) ([]chainToken, int, *chainError) {
	if i >= len(toks) {
		return nil, i, &chainError{end, "wants a task id or [list] at the end"}
	}
	if toks[i].text != "[" {
		if isChainPunct(toks[i].text) {
			return nil, i, &chainError{toks[i].col, fmt.Sprintf("wants a task id or [list], got %q", toks[i].text)}
		}
		return []chainToken{toks[i]}, i + 1, nil
	}
	var ids []chainToken
	i++
	for {
		if i >= len(toks) {
			return nil, i, &chainError{end, "wants ] to close the list"}
		}
		if toks[i].text == "]" && len(ids) > 0 {
			return ids, i + 1, nil
		}
		if isChainPunct(toks[i].text) {
			return nil, i, &chainError{toks[i].col, fmt.Sprintf("wants a task id, got %q", toks[i].text)}
		}
		ids = append(ids, toks[i])
		i++
		if i < len(toks) && toks[i].text == "," {
			i++
			continue
		}
		if i < len(toks) && toks[i].text != "]" {
			return nil, i, &chainError{toks[i].col, fmt.Sprintf("wants , or ] in the list, got %q", toks[i].text)}
		}
	}
}

func isChainPunct(s string) bool {
	switch s {
	case "[", "]", ",", ">>", "<<":
		return true
	}
	return false
}

// tokenizeChain splits a chain into ids, brackets, commas and operators.
func tokenizeChain(s string) []chainToken {
	var toks []chainToken
	runes := []rune(s)
	for i := 0; i < len(runes); {
		c := runes[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '[' || c == ']' || c == ',':
			toks = append(toks, chainToken{string(c), i + 1})
			i++
		case (c == '>' || c == '<') && i+1 < len(runes) && runes[i+1] == c:
			toks = append(toks, chainToken{string(runes[i : i+2]), i + 1})
			i += 2
		default:
			start := i
			for i < len(runes) && !unicode.IsSpace(runes[i]) && !strings.ContainsRune("[],", runes[i]) &&
				!((runes[i] == '>' || runes[i] == '<') && i+1 < len(runes) && runes[i+1] == runes[i]) {
				i++
			}
			if i == start { // a lone '>' or '<'
				i++
			}
			toks = append(toks, chainToken{string(runes[start:i]), start + 1})
		}
	}
	return toks
}
