package auth

import (
	"fmt"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLoginLimiterWindow(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLoginLimiter(3, time.Minute, 100, clock.now)
	for i := range 3 {
		if !l.Allowed("user:a", "addr:1") {
			t.Fatalf("refused after %d failures", i)
		}
		l.Fail("user:a", "addr:1")
	}
	if l.Allowed("user:a", "addr:2") {
		t.Fatal("user a allowed from another address after 3 failures")
	}
	if l.Allowed("user:b", "addr:1") {
		t.Fatal("address 1 allowed for another user after 3 failures")
	}
	if !l.Allowed("user:b", "addr:2") {
		t.Fatal("an unrelated user and address refused")
	}
	clock.advance(59 * time.Second)
	if l.Allowed("user:a") {
		t.Fatal("allowed again before the window ended")
	}
	clock.advance(time.Second)
	if !l.Allowed("user:a", "addr:1") {
		t.Fatal("still refused after the window ended")
	}
	l.Fail("user:a")
	if !l.Allowed("user:a") {
		t.Fatal("one failure in a new window refused")
	}
	l.Fail("user:a")
	l.Fail("user:a")
	l.Forget("user:a")
	if !l.Allowed("user:a") {
		t.Fatal("refused after Forget")
	}
}

func TestLoginLimiterBoundedMemory(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLoginLimiter(2, time.Minute, 10, clock.now)
	for i := range 10 {
		l.Fail(fmt.Sprintf("addr:%d", i))
		clock.advance(time.Second)
	}
	l.Fail("addr:hot")
	l.Fail("addr:hot")
	if got := l.size(); got != 10 {
		t.Fatalf("kept %d keys, want at most 10", got)
	}
	if l.Allowed("addr:hot") {
		t.Fatal("the newest key was evicted instead of the oldest")
	}
	clock.advance(2 * time.Minute) // every window expired: all go at once
	l.Fail("addr:new")
	if got := l.size(); got != 1 { // the map was full: the insert pruned every expired window
		t.Fatalf("after expiry kept %d keys, want 1", got)
	}
}
