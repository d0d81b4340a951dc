package dag

import (
	"strings"
	"unicode/utf8"
)

// keyHints names the podflow key for keys Airflow users and Kubernetes users
// reach for first; edit distance would not find these.
var keyHints = map[string][]string{
	"schedule_interval": {"schedule"},
	"timetable":         {"schedule"},
	"cron":              {"schedule"},
	"tz":                {"timezone"},
	"id":                {"dag_id", "task_id"},
	"name":              {"dag_id", "task_id"},
	"type":              {"operator"},
	"depends_on":        {"upstream"},
	"upstreams":         {"upstream"},
	"upstream_task_ids": {"upstream"},
	"dependencies":      {"upstream"},
	"after":             {"upstream"},
	"command":           {"bash_command"},
	"doc_md":            {"description"},
	"default_params":    {"params"},
}

// suggest returns the candidate closest to word, or "" when none is close
// enough to be the likely intent.
func suggest(word string, candidates []string) string {
	for _, hint := range keyHints[strings.ToLower(word)] {
		for _, c := range candidates {
			if c == hint {
				return c
			}
		}
	}
	lower := strings.ToLower(word)
	best, bestDist := "", 0
	for _, c := range candidates {
		d := editDistance(lower, strings.ToLower(c))
		if d > maxSuggestDistance(c) {
			continue
		}
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// maxSuggestDistance is how many edits still count as a misspelling of
// candidate: short words need a near match, long ones tolerate more.
func maxSuggestDistance(candidate string) int {
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

// didYouMean formats a suggestion for a message, or returns "".
func didYouMean(word string, candidates []string) string {
	if s := suggest(word, candidates); s != "" {
		return "; did you mean " + s + "?"
	}
	return ""
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of neighbours.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
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
