package online

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// coalescer sends the MGETs of concurrent readers together. At most max round trips are in
// flight; a read that arrives while they all are waits for the next one, which carries every
// read queued by then in one pipeline. A quiet store therefore answers each read in its own
// round trip with no added wait, and a busy one makes fewer, larger round trips instead of
// queueing for connections: the write and read system calls per lookup fall as load rises,
// which is when they matter.
type coalescer struct {
	client redis.UniversalClient
	max    int

	mu       sync.Mutex
	inFlight int
	pending  []*mgetCall
	// roundTrips counts round trips, for tests and metrics.
	roundTrips int64
}

type mgetCall struct {
	ctx  context.Context
	keys []string
	vals []any
	err  error
	done chan struct{}
}

// maxCoalesced bounds the reads one pipeline carries.
const maxCoalesced = 256

func newCoalescer(client redis.UniversalClient, max int) *coalescer {
	return &coalescer{client: client, max: max}
}

// mget is client.MGet(ctx, keys...).Result(), coalesced with concurrent reads.
func (c *coalescer) mget(ctx context.Context, keys []string) ([]any, error) {
	call := &mgetCall{ctx: ctx, keys: keys}
	c.mu.Lock()
	if c.inFlight < c.max {
		c.inFlight++
		c.roundTrips++
		c.mu.Unlock()
		c.send([]*mgetCall{call})
		c.next()
		return call.vals, call.err
	}
	call.done = make(chan struct{})
	c.pending = append(c.pending, call)
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.vals, call.err
	case <-ctx.Done():
		return nil, ctx.Err() // the round trip still answers into call; nobody reads it
	}
}

// next hands the reads queued meanwhile to a new round trip, or gives the slot back.
func (c *coalescer) next() {
	c.mu.Lock()
	if len(c.pending) == 0 {
		c.inFlight--
		c.mu.Unlock()
		return
	}
	n := min(len(c.pending), maxCoalesced)
	batch := make([]*mgetCall, n)
	copy(batch, c.pending)
	c.pending = append(c.pending[:0], c.pending[n:]...)
	c.roundTrips++
	c.mu.Unlock()
	go func() {
		c.send(batch)
		for _, call := range batch {
			close(call.done)
		}
		c.next()
	}()
}

// send reads every call's keys in one round trip. The round trip outlives a caller that
// gives up (the others still wait for it); the client's read and write timeouts bound it.
func (c *coalescer) send(batch []*mgetCall) {
	ctx := context.WithoutCancel(batch[0].ctx)
	if len(batch) == 1 {
		batch[0].vals, batch[0].err = c.client.MGet(ctx, batch[0].keys...).Result()
		return
	}
	pipe := c.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(batch))
	for i, call := range batch {
		cmds[i] = pipe.MGet(ctx, call.keys...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	for i, call := range batch {
		call.vals, call.err = cmds[i].Result()
	}
}

// RoundTrips is the number of MGET round trips made so far.
func (c *coalescer) RoundTrips() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.roundTrips
}
