package scheduler

import "testing"

// A release wakes the claimer only when a claim found no free slot since
// the last wake: then queued tasks may be waiting for the slot.
func TestSlotsReleaseWakesOnlyWhenWanted(t *testing.T) {
	t.Parallel()
	s := &slots{free: 2}
	if got := s.reserve(5); got != 2 {
		t.Fatalf("reserve(5) of 2 free = %d", got)
	}
	if s.release(1) {
		t.Error("a release woke the claimer though no claim had wanted a slot")
	}
	if got := s.reserve(3); got != 1 {
		t.Fatalf("reserve(3) of 1 free = %d", got)
	}
	if got := s.reserve(1); got != 0 {
		t.Fatalf("reserve(1) of none free = %d", got)
	}
	if !s.release(1) {
		t.Error("a release did not wake the claimer after a claim found no slot")
	}
	if s.release(1) {
		t.Error("a second release woke the claimer again for the same want")
	}
	if s.release(0) || s.available() != 2 {
		t.Errorf("free slots %d, want 2", s.available())
	}
}
