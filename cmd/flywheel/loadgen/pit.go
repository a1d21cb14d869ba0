package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/offline"
)

// PITConfig is a point-in-time retrieval of Rows entity rows over Cards cards, at random
// times within the last Span, computed by the offline store directly (no HTTP).
type PITConfig struct {
	Rows  int
	Cards int
	Span  time.Duration
}

// PIT runs it and reports the elapsed time and how many values were PRESENT.
func PIT(ctx context.Context, conn driver.Conn, e *agg.Engine, cfg PITConfig) (time.Duration, int, error) {
	rng := rand.New(rand.NewPCG(7, 8))
	now := time.Now().UnixMilli()
	rows := make([]offline.Row, cfg.Rows)
	for i := range rows {
		rows[i] = offline.Row{Index: i, Entity: fmt.Sprintf("c-%d", rng.IntN(cfg.Cards)), TS: now - rng.Int64N(cfg.Span.Milliseconds())}
	}
	present := 0
	start := time.Now()
	err := offline.Historical(ctx, conn, e, rows, func(_ offline.Row, res []agg.Result) error {
		for _, r := range res {
			if r.Status == agg.Present {
				present++
			}
		}
		return nil
	})
	return time.Since(start), present, err
}
