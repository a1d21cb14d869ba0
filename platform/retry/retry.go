// Package retry is the one way Flywheel waits out a dependency that is down: bounded
// exponential backoff with jitter, until the call succeeds, the error is permanent, or the
// context ends. Services never exit because a broker, Redis, NATS or ClickHouse is away for
// a while; only configuration errors (marked Permanent) end a retry early.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff is a bounded exponential backoff. The zero value is usable: 100 ms doubling up to
// 10 s with ±20 % jitter.
type Backoff struct {
	Initial    time.Duration // first wait; default 100ms
	Max        time.Duration // longest wait; default 10s
	Multiplier float64       // growth per attempt; default 2
	// Jitter spreads each wait uniformly over ±Jitter of itself, so many clients that lost
	// the same server do not reconnect in lockstep; default 0.2, negative for none.
	Jitter float64
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 100 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 10 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Multiplier < 1 {
		b.Multiplier = 2
	}
	if b.Jitter == 0 {
		b.Jitter = 0.2
	}
	if b.Jitter < 0 {
		b.Jitter = 0
	}
	return b
}

// Delay is the wait after the attempt-th consecutive failure (1 for the first).
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.withDefaults()
	d := float64(b.Initial)
	for i := 1; i < attempt && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	if b.Jitter > 0 {
		d *= 1 + b.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot fix (a bad configuration, a changed
// migration): Do returns it at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Notify is told about each failure: the consecutive attempt number, the error and how long
// Do waits before the next attempt.
type Notify func(attempt int, err error, wait time.Duration)

// Do calls op until it returns nil, a Permanent error, or ctx ends. It returns nil, the
// permanent error, or ctx's error joined with op's last error.
func Do(ctx context.Context, b Backoff, op func(ctx context.Context) error, notify Notify) error {
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if IsPermanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		wait := b.Delay(attempt)
		if notify != nil {
			notify(attempt, err, wait)
		}
		if !Sleep(ctx, wait) {
			return errors.Join(ctx.Err(), err)
		}
	}
}

// Sleep waits for d or until ctx ends, and reports whether the whole wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
