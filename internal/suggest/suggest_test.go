package suggest

import (
	"strings"
	"testing"
)

func TestDistance(t *testing.T) {
	long := strings.Repeat("a", maxRunes+1)
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"schedule", "schedule", 0},
		{"schedul", "schedule", 1},             // deletion
		{"scheduule", "schedule", 1},           // insertion
		{"schedale", "schedule", 1},            // substitution
		{"shcedule", "schedule", 1},            // transposition of neighbours
		{"retires", "retries", 1},              // transposition in the middle
		{"Schedule", "schedule", 1},            // case matters here
		{"héllo", "hello", 1},                  // runes, not bytes
		{"kitten", "sitting", 3},               //
		{long, long, 0},                        // too long: equal
		{long, long[1:] + "b", 2*maxRunes + 2}, // too long: far
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestClosest(t *testing.T) {
	keys := []string{"schedule", "catchup", "dag_id", "tasks", "timezone"}
	for _, tc := range []struct {
		name       string
		word       string
		candidates []string
		want       string
	}{
		{"one edit", "schedul", keys, "schedule"},
		{"two edits in a medium word", "catchpu", keys, "catchup"},
		{"case is ignored", "SCHEDULE", keys, "schedule"},
		{"case differs only", "nodeaffinity", []string{"nodeAffinity", "podAffinity"}, "nodeAffinity"},
		{"too far", "foo", keys, ""},
		{"no candidates", "schedule", nil, ""},
		{"short word: one edit", "bsh", []string{"bash", "http"}, "bash"},
		{"short word: two edits are too many", "ky", []string{"env"}, ""},
		{"medium word: three edits are too many", "catxxxp", keys, ""},
		{"long word: three edits", "preferenceXYZ", []string{"preference"}, "preference"},
		{"long word: four edits are too many", "preferenceWXYZ", []string{"preference"}, ""},
		{"the closest wins", "loa", []string{"lead", "load", "loan"}, "load"},
		{"ties go to the first", "lod", []string{"load", "lode"}, "load"},
		{"ties go to the first, other order", "lod", []string{"lode", "load"}, "lode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Closest(tc.word, tc.candidates); got != tc.want {
				t.Errorf("Closest(%q, %q) = %q, want %q", tc.word, tc.candidates, got, tc.want)
			}
		})
	}
}

func TestMaxDistance(t *testing.T) {
	for _, tc := range []struct {
		candidate string
		want      int
	}{
		{"env", 1}, {"bash", 2}, {"schedule", 2}, {"bash_command", 3}, {"ééé", 1},
	} {
		if got := MaxDistance(tc.candidate); got != tc.want {
			t.Errorf("MaxDistance(%q) = %d, want %d", tc.candidate, got, tc.want)
		}
	}
}
