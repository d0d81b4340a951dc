package auth

import (
	"sync"
	"time"
)

// loginLimiter counts failed logins per key (a user name or a remote
// address) in fixed windows: after max failures within window, the key is
// refused until its window ends.
//
// It is in memory, per process: with several webservers an attacker gets
// max tries per window on each of them, which still turns a password guess
// per bcrypt check into a handful per minute. Memory is bounded: at most
// maxKeys keys are kept; when full, expired windows are dropped first, then
// the oldest window.
type loginLimiter struct {
	mu      sync.Mutex
	now     func() time.Time
	max     int
	window  time.Duration
	maxKeys int
	keys    map[string]*failures
}

type failures struct {
	start time.Time
	count int
}

func newLoginLimiter(max int, window time.Duration, maxKeys int, now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, max: max, window: window, maxKeys: maxKeys, keys: map[string]*failures{}}
}

// Allowed reports whether every one of keys may try again now.
func (l *loginLimiter) Allowed(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		if f, ok := l.keys[k]; ok && now.Sub(f.start) < l.window && f.count >= l.max {
			return false
		}
	}
	return true
}

// Fail counts one failed login against each of keys.
func (l *loginLimiter) Fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, k := range keys {
		f, ok := l.keys[k]
		if ok && now.Sub(f.start) < l.window {
			f.count++
			continue
		}
		if !ok && len(l.keys) >= l.maxKeys {
			l.evict(now)
		}
		l.keys[k] = &failures{start: now, count: 1}
	}
}

// Forget clears a key's failures (a user who logged in).
func (l *loginLimiter) Forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}

// evict makes room for one key: expired windows go first, else the oldest.
func (l *loginLimiter) evict(now time.Time) {
	var oldest string
	var oldestStart time.Time
	for k, f := range l.keys {
		if now.Sub(f.start) >= l.window {
			delete(l.keys, k)
			continue
		}
		if oldest == "" || f.start.Before(oldestStart) {
			oldest, oldestStart = k, f.start
		}
	}
	if len(l.keys) >= l.maxKeys && oldest != "" {
		delete(l.keys, oldest)
	}
}

// size is the number of keys kept (for tests).
func (l *loginLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
