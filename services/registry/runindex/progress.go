package runindex

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrBehind means the ClickHouse projection has not caught up with a write in time.
var ErrBehind = errors.New("the runs index is behind")

// progress is how far a projection has applied its source (a KV revision or stream
// sequence), so a read can wait until it includes a write it must see.
type progress struct {
	mu      sync.Mutex
	applied uint64
	changed chan struct{}
}

func newProgress() *progress { return &progress{changed: make(chan struct{})} }

func (p *progress) advance(v uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v > p.applied {
		p.applied = v
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

func (p *progress) Applied() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

// wait blocks until the projection applied v, ctx ends or timeout passes.
func (p *progress) wait(ctx context.Context, v uint64, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		applied, ch := p.applied, p.changed
		p.mu.Unlock()
		if applied >= v {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("%w: applied %d, need %d", ErrBehind, applied, v)
		}
	}
}
