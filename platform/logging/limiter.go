package logging

import (
	"sync"
	"time"
)

// Limiter lets one log line per key through every interval and counts the ones it held
// back, so a failure repeated thousands of times a minute (a dependency down, a readiness
// probe answered 503 every second) costs a line per interval, each saying how many it stands
// for. Safe for concurrent use.
type Limiter struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	keys  map[string]*limiterState
}

type limiterState struct {
	last       time.Time
	suppressed int
}

// NewLimiter returns a limiter allowing one line per key every interval.
func NewLimiter(every time.Duration) *Limiter {
	return &Limiter{every: every, now: time.Now, keys: map[string]*limiterState{}}
}

// Allow reports whether a line for key may be logged now and, if so, how many were held back
// since the last one.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	st := l.keys[key]
	if st == nil {
		if len(l.keys) > 10_000 { // keys are routes and codes; bound them anyway
			clear(l.keys)
		}
		st = &limiterState{}
		l.keys[key] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < l.every {
		st.suppressed++
		return false, 0
	}
	n := st.suppressed
	st.last, st.suppressed = now, 0
	return true, n
}

// WithClock replaces the clock, for tests.
func (l *Limiter) WithClock(now func() time.Time) *Limiter { l.now = now; return l }
