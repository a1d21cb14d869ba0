package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// leaseKey holds the id of the relay that publishes (empty: released). The holder rewrites
// it every LeaseTTL/5; another relay takes it over when it saw the key's revision unchanged
// for LeaseTTL (measured on its own clock, so clocks need not agree) or released. Two
// relays publishing at once (a holder that has not yet noticed it lost the lease) only
// duplicate events under their ids; the position never moves back.
const leaseKey = "leader"

// acquire blocks until this relay holds the lease and returns the lease's revision.
func (r *Relay) acquire(ctx context.Context) (uint64, error) {
	var seenRev uint64
	var seenAt time.Time
	logged := false
	for {
		e, err := r.pos.Get(ctx, leaseKey)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev, err := r.pos.Create(ctx, leaseKey, []byte(r.id))
			if err == nil {
				return rev, nil
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return 0, fmt.Errorf("take registry relay lease: %w", err)
			}
			continue
		case err != nil:
			return 0, fmt.Errorf("read registry relay lease: %w", err)
		}
		holder := string(e.Value())
		if e.Revision() != seenRev {
			seenRev, seenAt = e.Revision(), time.Now()
		}
		if holder == "" || holder == r.id || time.Since(seenAt) >= r.cfg.LeaseTTL {
			rev, err := r.pos.Update(ctx, leaseKey, []byte(r.id), e.Revision())
			if err == nil {
				if holder != "" && holder != r.id {
					r.log.Info("took over the registry event relay from a silent holder", zap.String("previous", holder))
				}
				return rev, nil
			}
			if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
				return 0, fmt.Errorf("take registry relay lease: %w", err)
			}
			continue
		}
		if !logged {
			r.log.Debug("another registry process relays the events; standing by", zap.String("holder", holder))
			logged = true
		}
		if !sleep(ctx, r.cfg.LeaseTTL/5) {
			return 0, ctx.Err()
		}
	}
}

// hold renews the lease until ctx ends, then cancels lost. It cancels lost early if another
// relay took the lease, or if no renewal succeeded for LeaseTTL (another may have taken
// over by now). It returns the lease's last revision.
func (r *Relay) hold(ctx context.Context, rev uint64, lost context.CancelFunc) uint64 {
	defer lost()
	last := time.Now()
	for sleep(ctx, r.cfg.LeaseTTL/5) {
		next, err := r.pos.Update(ctx, leaseKey, []byte(r.id), rev)
		switch {
		case err == nil:
			rev, last = next, time.Now()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
			r.log.Warn("registry relay lease taken by another process; standing by")
			return 0
		case time.Since(last) >= r.cfg.LeaseTTL:
			r.log.Warn("registry relay lease not renewed in time; standing by", zap.Error(err))
			return rev
		}
	}
	return rev
}

// release gives the lease up at shutdown, so another process takes over at once.
func (r *Relay) release(ctx context.Context, rev uint64) {
	if rev == 0 {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	_, _ = r.pos.Update(rctx, leaseKey, nil, rev)
}
