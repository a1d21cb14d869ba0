package chx

import (
	"context"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.uber.org/zap"
)

// Batcher collects rows from many goroutines and inserts them in batches, every interval or
// when maxRows are waiting. It suits data that may be lost in a crash (statistics); data that
// must be durable before an offset commit is written with Insert instead.
type Batcher struct {
	conn     driver.Conn
	table    string
	columns  []string
	interval time.Duration
	maxRows  int
	log      *zap.Logger

	mu   sync.Mutex
	rows [][]any
	kick chan struct{}
}

// NewBatcher returns a batcher for table's columns.
func NewBatcher(conn driver.Conn, table string, columns []string, interval time.Duration, maxRows int, log *zap.Logger) *Batcher {
	return &Batcher{conn: conn, table: table, columns: columns, interval: interval, maxRows: maxRows,
		log: log.Named("batcher").With(zap.String("table", table)), kick: make(chan struct{}, 1)}
}

// Add queues one row. It never blocks on ClickHouse.
func (b *Batcher) Add(row ...any) {
	b.mu.Lock()
	b.rows = append(b.rows, row)
	full := len(b.rows) >= b.maxRows
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// Run flushes until ctx is cancelled, then flushes once more.
func (b *Batcher) Run(ctx context.Context) error {
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-b.kick:
		case <-ctx.Done():
			flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			defer cancel()
			b.Flush(flushCtx)
			return nil
		}
		b.Flush(ctx)
	}
}

// Flush inserts the queued rows now. Rows of a failed insert are kept for the next flush,
// up to 100 batches' worth, so a short ClickHouse outage loses nothing.
func (b *Batcher) Flush(ctx context.Context) {
	b.mu.Lock()
	rows := b.rows
	b.rows = nil
	b.mu.Unlock()
	if len(rows) == 0 {
		return
	}
	if err := Insert(ctx, b.conn, b.table, b.columns, rows); err != nil {
		b.log.Warn("flush failed; keeping rows for the next try", zap.Int("rows", len(rows)), zap.Error(err))
		b.mu.Lock()
		if len(b.rows)+len(rows) <= 100*b.maxRows {
			b.rows = append(rows, b.rows...)
		}
		b.mu.Unlock()
	}
}
