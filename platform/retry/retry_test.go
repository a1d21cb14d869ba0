package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/retry"
)

func TestDelayGrowsWithinBoundsAndJitter(t *testing.T) {
	b := retry.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2}
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 50: time.Second} {
		lo, hi := time.Duration(float64(want)*0.8), time.Duration(float64(want)*1.2)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := b.Delay(attempt)
			if d < lo || d > hi {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Fatalf("attempt %d: only %d distinct delays; jitter is not spreading retries", attempt, len(seen))
		}
	}
	if d := (retry.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Jitter: -1}).Delay(10); d != 4*time.Millisecond {
		t.Fatalf("without jitter the cap is exact: got %v", d)
	}
}

func TestDoRetriesUntilSuccess(t *testing.T) {
	calls, notified := 0, 0
	err := retry.Do(context.Background(), retry.Backoff{Initial: time.Millisecond}, func(context.Context) error {
		calls++
		if calls < 4 {
			return errors.New("down")
		}
		return nil
	}, func(attempt int, err error, wait time.Duration) {
		notified++
		if attempt != notified || err == nil || wait <= 0 {
			t.Errorf("notify(%d, %v, %v) after %d calls", attempt, err, wait, notified)
		}
	})
	if err != nil || calls != 4 || notified != 3 {
		t.Fatalf("err %v, calls %d, notified %d; want nil, 4, 3", err, calls, notified)
	}
}

func TestDoStopsAtPermanentError(t *testing.T) {
	bad := errors.New("bad config")
	calls := 0
	err := retry.Do(context.Background(), retry.Backoff{Initial: time.Millisecond}, func(context.Context) error {
		calls++
		return retry.Permanent(bad)
	}, nil)
	if !errors.Is(err, bad) || !retry.IsPermanent(err) || calls != 1 {
		t.Fatalf("err %v (permanent %v), calls %d; want the permanent error after 1 call", err, retry.IsPermanent(err), calls)
	}
	if retry.IsPermanent(errors.New("x")) || retry.Permanent(nil) != nil {
		t.Fatal("only marked errors are permanent")
	}
}

func TestDoEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	down := errors.New("down")
	err := retry.Do(ctx, retry.Backoff{Initial: 10 * time.Millisecond}, func(context.Context) error { return down }, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, down) {
		t.Fatalf("want the deadline joined with the last error, got %v", err)
	}
}
