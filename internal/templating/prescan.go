package templating

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits checked on the source before gonja sees it. gonja's parser (and
// our tree rewrite, and gonja's evaluator) recurse once per level of
// nesting: ~100,000 nested parentheses overflow the Go stack, which is a
// fatal error no recover() catches. Real templates nest a handful of levels.
const (
	maxSourceBytes    = 256 << 10 // one template's source
	maxNesting        = 64        // open (, [, { inside one tag; open {% if/for/... %} blocks
	maxOperatorsInTag = 1_000     // operators in one tag: a chain a+a+…+a is a tree as deep as it is long
)

// blockTags are the statements that open a block closed by {% end… %}.
var blockTags = map[string]bool{
	"if": true, "for": true, "macro": true, "call": true, "filter": true,
	"with": true, "autoescape": true, "block": true, "trans": true,
}

// prescan refuses a source that is too large or nested too deeply for the
// parser to handle safely, with the position of the offending character.
func prescan(src string) *SyntaxError {
	if len(src) > maxSourceBytes {
		return &SyntaxError{Expr: truncate(src, 80), Line: 1, Column: 1,
			Msg: fmt.Sprintf("template of %d bytes exceeds the limit of %d bytes", len(src), maxSourceBytes)}
	}
	s := scanner{src: src, line: 1}
	blocks := 0
	for s.pos < len(src) {
		i := strings.IndexByte(src[s.pos:], '{')
		if i < 0 || s.pos+i+1 >= len(src) {
			return nil
		}
		s.advance(s.pos + i)
		switch src[s.pos+1] {
		case '#':
			end := strings.Index(src[s.pos+2:], "#}")
			if end < 0 {
				return unclosedComment(&s)
			}
			s.advance(s.pos + 2 + end + 2)
		case '{':
			if err := s.expression("}}"); err != nil {
				return err
			}
		case '%':
			line, col := s.line, s.col()
			name := firstWord(src[s.pos+2:])
			switch {
			case blockTags[name]:
				blocks++
				if blocks > maxNesting {
					return &SyntaxError{Expr: "{% " + name, Line: line, Column: col,
						Msg: fmt.Sprintf("blocks nested deeper than %d levels at line %d, column %d", maxNesting, line, col)}
				}
			case strings.HasPrefix(name, "end") && blockTags[strings.TrimPrefix(name, "end")]:
				blocks = max(blocks-1, 0)
			case name == "raw":
				if err := s.expression("%}"); err != nil {
					return err
				}
				end := strings.Index(src[s.pos:], "endraw")
				if end < 0 {
					return nil
				}
				s.advance(s.pos + end)
				continue
			}
			if err := s.expression("%}"); err != nil {
				return err
			}
		default:
			s.advance(s.pos + 1)
		}
	}
	return nil
}

// unclosedComment explains a "{#" that is never closed. In a command it is
// nearly always a shell length, ${#VAR}, which Jinja (in Airflow too) reads
// as the start of a comment.
func unclosedComment(s *scanner) *SyntaxError {
	msg := "'{#' opens a Jinja comment that is never closed with '#}'"
	if s.pos > 0 && s.src[s.pos-1] == '$' {
		msg = "'${#' is a shell length, but Jinja reads '{#' as the start of a comment that is never closed; " +
			"write it as {{ '${#' }}NAME} or put the command inside {% raw %}…{% endraw %}"
	}
	return &SyntaxError{Expr: truncate(s.src[max(s.pos-1, 0):], 40), Line: s.line, Column: s.col(), Msg: msg}
}

// scanner walks the source keeping the line and column of pos.
type scanner struct {
	src       string
	pos       int
	line      int
	lineStart int
}

func (s *scanner) advance(to int) {
	for i := s.pos; i < to && i < len(s.src); i++ {
		if s.src[i] == '\n' {
			s.line++
			s.lineStart = i + 1
		}
	}
	s.pos = min(to, len(s.src))
}

func (s *scanner) col() int { return utf8.RuneCountInString(s.src[s.lineStart:s.pos]) + 1 }

// expression scans one tag from its opening delimiter to closer, counting
// open brackets and operators (string literals are skipped).
func (s *scanner) expression(closer string) *SyntaxError {
	s.advance(s.pos + 2)
	depth, operators := 0, 0
	word := false // inside an identifier or number
	for s.pos < len(s.src) {
		c := s.src[s.pos]
		// As gonja's lexer: "}}" inside a dict literal closes the dict.
		if (depth == 0 || c != '}') && strings.HasPrefix(s.src[s.pos:], closer) {
			s.advance(s.pos + len(closer))
			return nil
		}
		isWord := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
		switch {
		case c == '\'' || c == '"':
			end := s.pos + 1
			for end < len(s.src) && s.src[end] != c {
				if s.src[end] == '\\' {
					end++
				}
				end++
			}
			s.advance(end + 1)
			word = false
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
			if depth > maxNesting {
				return &SyntaxError{Expr: truncate(s.src[s.pos:], 40), Line: s.line, Column: s.col(),
					Msg: fmt.Sprintf("brackets nested deeper than %d levels at line %d, column %d", maxNesting, s.line, s.col())}
			}
		case c == ')' || c == ']' || c == '}':
			depth = max(depth-1, 0)
		case strings.IndexByte("+-*/%~.<>=!", c) >= 0:
			operators++
		case isWord && !word:
			switch firstWord(s.src[s.pos:]) {
			case "and", "or", "not", "if", "else", "is", "in":
				operators++
			}
		}
		word = isWord
		if operators > maxOperatorsInTag {
			return &SyntaxError{Expr: truncate(s.src[s.pos:], 40), Line: s.line, Column: s.col(),
				Msg: fmt.Sprintf("more than %d operators in one tag at line %d, column %d; split the expression", maxOperatorsInTag, s.line, s.col())}
		}
		s.advance(s.pos + 1)
	}
	return nil
}

// firstWord is the identifier at the start of s after spaces and a
// whitespace-control sign.
func firstWord(s string) string {
	s = strings.TrimLeft(s, " \t\r\n-+")
	end := 0
	for end < len(s) {
		c := s[end]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			end++
			continue
		}
		break
	}
	return s[:end]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
