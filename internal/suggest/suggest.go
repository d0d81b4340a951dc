// Package suggest finds the word a user most likely meant when they typed
// one we do not know: the "did you mean" of the DAG parser and of the pod
// spec decoder. It only chooses; each caller words the message its own way.
package suggest

import (
	"strings"
	"unicode/utf8"
)

// Closest returns the candidate closest to word by edit distance, ignoring
// case, or "" when none is close enough to be the likely intent (see
// MaxDistance). Of equally close candidates the first wins, so callers pass
// candidates in a stable order.
func Closest(word string, candidates []string) string {
	lower := strings.ToLower(word)
	best, bestDist := "", 0
	for _, c := range candidates {
		d := Distance(lower, strings.ToLower(c))
		if d > MaxDistance(c) {
			continue
		}
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// MaxDistance is how many edits still count as a misspelling of candidate:
// short words need a near match (one edit turns "bsh" into "bash" but also
// "env" into "key"), long ones tolerate more.
func MaxDistance(candidate string) int {
	n := utf8.RuneCountInString(candidate)
	switch {
	case n <= 3:
		return 1
	case n <= 8:
		return 2
	default:
		return 3
	}
}

// maxRunes bounds the words Distance compares letter by letter: its cost is
// quadratic and no key or name we suggest is this long, so a longer word
// (from a fuzzer or a pasted blob) is only ever equal or far.
const maxRunes = 64

// Distance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of neighbours,
// counted in runes. Case matters; Closest lowers both sides first.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > maxRunes || len(rb) > maxRunes {
		if a == b {
			return 0
		}
		return len(ra) + len(rb)
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
