package operators

import (
	"fmt"
	"strings"
	"time"

	"github.com/podflow/podflow/dag"
)

// DurationOption reads a duration option: a number of seconds, a duration
// string ("90s", "1h30m", dag.ParseDuration's forms) or a time.Duration.
// ok is false when v is absent or none of these.
func DurationOption(v any) (d time.Duration, ok bool) {
	switch x := v.(type) {
	case int:
		return time.Duration(x) * time.Second, true
	case int64:
		return time.Duration(x) * time.Second, true
	case float64:
		return time.Duration(x * float64(time.Second)), true
	case string:
		return dag.ParseDuration(x)
	case time.Duration:
		return x, true
	}
	return 0, false
}

// ParseTime reads a rendered date option: RFC3339, or a date and optional
// time in loc (UTC when nil). The error names the value.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04:05-07:00", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC3339 or YYYY-MM-DD[ HH:MM:SS]", s)
}
