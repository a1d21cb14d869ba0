package online

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/testenv"
)

// TestCoalescedReadsAnswerEachCaller: on the real Redis, 64 concurrent readers through one
// round trip slot each get exactly their own keys' values (present, absent, repeated), and
// they needed far fewer round trips than reads.
func TestCoalescedReadsAnswerEachCaller(t *testing.T) {
	client, prefix := testenv.Redis(t)
	ctx := context.Background()
	for i := range 500 {
		if err := client.Set(ctx, prefix+"k"+strconv.Itoa(i), "v"+strconv.Itoa(i), time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c := newCoalescer(client, 1)
	const readers, reads = 64, 50
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for r := range readers {
		wg.Go(func() {
			for k := range reads {
				keys := []string{prefix + "k" + strconv.Itoa((r*7+k)%500), prefix + "absent", prefix + "k" + strconv.Itoa(r)}
				vals, err := c.mget(ctx, keys)
				if err != nil {
					errs <- err
					return
				}
				want := []any{"v" + strconv.Itoa((r*7+k)%500), nil, "v" + strconv.Itoa(r)}
				for i := range want {
					if len(vals) != len(want) || vals[i] != want[i] {
						errs <- errors.New("reader " + strconv.Itoa(r) + " got values of other keys")
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := c.RoundTrips(); n >= readers*reads/2 {
		t.Fatalf("%d reads took %d round trips: not coalesced", readers*reads, n)
	} else {
		t.Logf("%d reads in %d round trips", readers*reads, n)
	}
	if c.inFlight != 0 || len(c.pending) != 0 {
		t.Fatalf("after the reads: %d in flight, %d pending", c.inFlight, len(c.pending))
	}
}

// TestCoalescedReadGivesUpAtItsDeadline: a queued read returns its context's error at its
// deadline while the slot is taken, and the coalescer works on afterwards.
func TestCoalescedReadGivesUpAtItsDeadline(t *testing.T) {
	client, prefix := testenv.Redis(t)
	c := newCoalescer(client, 1)
	c.mu.Lock()
	c.inFlight = 1 // a round trip that does not end
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.mget(ctx, []string{prefix + "x"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("queued read: %v, want the deadline", err)
	}
	c.next() // the stuck round trip ends: the abandoned read is sent, the slot comes back
	deadline := time.Now().Add(2 * time.Second)
	for {
		c.mu.Lock()
		idle := c.inFlight == 0
		c.mu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("slot never came back")
		}
		time.Sleep(time.Millisecond)
	}
	if vals, err := c.mget(context.Background(), []string{prefix + "x"}); err != nil || len(vals) != 1 || vals[0] != nil {
		t.Fatalf("read after: %v %v", vals, err)
	}
}
