package dag

import (
	"strings"

	"github.com/podflow/podflow/internal/suggest"
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

// didYouMean formats, for a message, the candidate the user most likely
// meant by word: a hint for a key from another tool first, else the
// closest by spelling; "" when there is none.
func didYouMean(word string, candidates []string) string {
	s := hinted(word, candidates)
	if s == "" {
		s = suggest.Closest(word, candidates)
	}
	if s == "" {
		return ""
	}
	return "; did you mean " + s + "?"
}

// hinted returns the candidate keyHints names for word, or "".
func hinted(word string, candidates []string) string {
	for _, hint := range keyHints[strings.ToLower(word)] {
		for _, c := range candidates {
			if c == hint {
				return c
			}
		}
	}
	return ""
}
