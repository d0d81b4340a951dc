package operators

import (
	"strings"
	"testing"
	"time"
)

func TestDurationOption(t *testing.T) {
	for _, c := range []struct {
		in   any
		want time.Duration
		ok   bool
	}{
		{nil, 0, false}, {90, 90 * time.Second, true}, {int64(2), 2 * time.Second, true}, {1.5, 1500 * time.Millisecond, true},
		{"1h30m", 90 * time.Minute, true}, {time.Minute, time.Minute, true}, {"soon", 0, false}, {true, 0, false},
	} {
		got, ok := DurationOption(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("DurationOption(%#v) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestParseTime(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]time.Time{
		"2026-12-01T10:00:00Z":  time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		" 2026-12-01 10:00:00 ": time.Date(2026, 12, 1, 10, 0, 0, 0, paris),
		"2026-12-01":            time.Date(2026, 12, 1, 0, 0, 0, 0, paris),
	} {
		got, err := ParseTime(in, paris)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseTime("tomorrow", nil); err == nil || !strings.Contains(err.Error(), `"tomorrow"`) {
		t.Errorf("ParseTime(tomorrow): %v, want an error naming the value", err)
	}
}
