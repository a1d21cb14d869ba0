package runindex

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Read-your-writes across registry processes: a read first waits until the projection
// includes everything its source held when the read began, not only this process's writes.
// Any write a client saw acknowledged, by whichever process, is then in the answer, at the
// cost of one JetStream info request per read.

// WaitForAll blocks (at most timeout) until the projection includes every revision the runs
// bucket held when it was called. Every registry process projects the whole bucket, so its
// own progress says so.
func (p *Runs) WaitForAll(ctx context.Context, timeout time.Duration) error {
	st, err := p.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("read runs bucket position: %w", err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return fmt.Errorf("read runs bucket position: unexpected status %T", st)
	}
	return p.wait(ctx, bs.StreamInfo().State.LastSeq, timeout)
}

// WaitForAll blocks (at most timeout) until every metric point the stream held when it was
// called is in ClickHouse. Registry processes share the work queue, so no process's own
// progress can say that; the stream can: a point leaves it only when a projection
// acknowledged it after its insert, so once no message at or below the starting last
// sequence remains, all of them are inserted.
func (p *Metrics) WaitForAll(ctx context.Context, timeout time.Duration) error {
	stream, err := p.js.Stream(ctx, p.stream)
	if err != nil {
		return fmt.Errorf("read metrics stream position: %w", err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var target uint64
	for first := true; ; first = false {
		info, err := stream.Info(ctx)
		if err != nil {
			return fmt.Errorf("read metrics stream position: %w", err)
		}
		if first {
			target = info.State.LastSeq
		}
		if info.State.Msgs == 0 || info.State.FirstSeq > target {
			return nil
		}
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		// This process's own inserts wake the wait at once; another's are seen by polling.
		select {
		case <-changed:
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("%w: the metrics stream still holds points up to %d from %d on", ErrBehind, target, info.State.FirstSeq)
		}
	}
}
