package api

import (
	"testing"
	"time"

	"github.com/podflow/podflow/internal/store"
)

func TestTries(t *testing.T) {
	at := func(s int) time.Time { return time.Date(2026, 1, 1, 0, 0, s, 0, time.UTC) }
	h := func(try int, state string, s int) store.StateChange {
		return store.StateChange{TryNumber: try, State: state, At: at(s)}
	}
	cases := []struct {
		name    string
		history []store.StateChange
		want    []Try
	}{
		{"queued, never ran", []store.StateChange{h(0, "queued", 1)}, nil},
		{"one try running", []store.StateChange{h(0, "queued", 1), h(1, "running", 2)},
			[]Try{{Number: 1, State: "running", Start: ptr(at(2))}}},
		{"retried then succeeded", []store.StateChange{h(0, "queued", 1), h(1, "running", 2), h(1, "up_for_retry", 3),
			h(1, "queued", 4), h(2, "running", 5), h(2, "success", 6)},
			[]Try{{Number: 1, State: "up_for_retry", Start: ptr(at(2)), End: ptr(at(3))}, {Number: 2, State: "success", Start: ptr(at(5)), End: ptr(at(6))}}},
		{"cleared after success: the clear is the next try's prelude", []store.StateChange{h(1, "running", 1), h(1, "success", 2),
			h(1, "none", 3), h(1, "queued", 4), h(2, "running", 5)},
			[]Try{{Number: 1, State: "success", Start: ptr(at(1)), End: ptr(at(2))}, {Number: 2, State: "running", Start: ptr(at(5))}}},
		{"deferred and resumed in one try", []store.StateChange{h(1, "running", 1), h(1, "deferred", 2), h(1, "scheduled", 3),
			h(1, "queued", 4), h(1, "running", 5), h(1, "failed", 6)},
			[]Try{{Number: 1, State: "failed", Start: ptr(at(1)), End: ptr(at(6))}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Tries(c.history)
			if len(got) != len(c.want) {
				t.Fatalf("got %d tries %+v, want %d", len(got), got, len(c.want))
			}
			for i := range got {
				g, w := got[i], c.want[i]
				if g.Number != w.Number || g.State != w.State || !eqTime(g.Start, w.Start) || !eqTime(g.End, w.End) {
					t.Errorf("try %d: got %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func eqTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
