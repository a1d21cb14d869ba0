package runindex

import (
	"context"
	"time"
)

// minInsertGap bounds how often a projection inserts into ClickHouse under load: every
// insert is a part to merge, and a registry busy logging metrics would otherwise insert
// hundreds of times a second. Idle, a change is inserted at once.
const minInsertGap = 100 * time.Millisecond

// gather collects what arrives on ch after first: everything already waiting, and — when the
// previous insert was less than minInsertGap ago — whatever arrives until that gap has
// passed, up to maxBatch items. ok is false when ch was closed.
func gather[T any](ctx context.Context, ch <-chan T, first T, lastInsert time.Time) (batch []T, ok bool) {
	batch = append(batch, first)
	var deadline <-chan time.Time
	if wait := minInsertGap - time.Since(lastInsert); wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		deadline = timer.C
	}
	for len(batch) < maxBatch {
		if deadline == nil {
			select {
			case x, open := <-ch:
				if !open {
					return batch, false
				}
				batch = append(batch, x)
				continue
			default:
				return batch, true
			}
		}
		select {
		case x, open := <-ch:
			if !open {
				return batch, false
			}
			batch = append(batch, x)
		case <-deadline:
			deadline = nil
		case <-ctx.Done():
			return batch, true
		}
	}
	return batch, true
}
