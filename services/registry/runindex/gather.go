package runindex

import (
	"context"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/chx"
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

// insertUntilDone inserts rows, retrying with a growing pause until ClickHouse takes them:
// the source (KV watch, stream) holds the changes meanwhile, and reads wait (bounded) rather
// than see a gap. It fails only when ctx ends.
func insertUntilDone(ctx context.Context, conn driver.Conn, table string, columns []string, rows [][]any, log *zap.Logger) error {
	for attempt := 0; ; attempt++ {
		err := chx.Insert(ctx, conn, table, columns, rows)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("projection insert failed; retrying", zap.String("table", table), zap.Int("rows", len(rows)), zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(min(attempt+1, 10)) * 200 * time.Millisecond):
		}
	}
}
