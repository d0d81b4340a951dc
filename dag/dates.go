package dag

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// date reads start_date or end_date: YYYY-MM-DD (midnight in the DAG's
// timezone), a local date-time, or RFC 3339 with an offset.
func (f *fileParser) date(key string, n *yaml.Node, loc *time.Location) (time.Time, bool) {
	r := resolve(n)
	if !isText(r) {
		f.wrongType(key, n, "a date (YYYY-MM-DD or RFC 3339)")
		return time.Time{}, false
	}
	t, err := ParseDate(r.Value, loc)
	if err != nil {
		f.errorf(n, "%s: %v", key, err)
		return time.Time{}, false
	}
	return t, true
}

// ParseDate parses a DAG date: "2026-01-01" (midnight in loc),
// "2026-01-01T06:00:00" or "2026-01-01 06:00:00" (in loc), or RFC 3339 with
// an offset ("2026-01-01T06:00:00Z").
func ParseDate(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.In(loc), nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s is not a date: use YYYY-MM-DD or RFC 3339 (2006-01-02T15:04:05Z)", quoteShort(s))
}

// location loads an IANA timezone once per parser.
func (p *Parser) location(name string) (*time.Location, error) {
	if v, ok := p.locations.Load(name); ok {
		return v.(*time.Location), nil
	}
	loc, err := LoadTimezone(name)
	if err != nil {
		return nil, err
	}
	p.locations.Store(name, loc)
	return loc, nil
}

// LoadTimezone loads an IANA timezone by name ("UTC", "Europe/Berlin").
// "Local" is refused: a DAG must not mean different times on different
// machines.
func LoadTimezone(name string) (*time.Location, error) {
	if name == "" || name == "Local" || strings.ContainsAny(name, " \t") {
		return nil, fmt.Errorf("%s is not an IANA timezone name (e.g. UTC, Europe/Berlin)", quoteShort(name))
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%s is not an IANA timezone name (e.g. UTC, Europe/Berlin)", quoteShort(name))
	}
	return loc, nil
}
