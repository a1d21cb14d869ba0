package runindex

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/services/registry/store"
)

// History returns a run's points of one metric ordered by step, then timestamp, then value,
// from offset, at most limit of them; identical points count once.
func History(ctx context.Context, conn driver.Conn, runID, key string, offset, limit int) ([]store.Metric, error) {
	rows, err := conn.Query(ctx, `SELECT step, timestamp, value FROM `+historyTable+`
		WHERE run_id = ? AND key = ?
		GROUP BY step, timestamp, value
		ORDER BY step, timestamp, value
		LIMIT ?, ?`, runID, key, offset, limit)
	if err != nil {
		return nil, fmt.Errorf("read history of %s of run %s: %w", key, runID, err)
	}
	defer rows.Close()
	var out []store.Metric
	for rows.Next() {
		m := store.Metric{Key: key}
		if err := rows.Scan(&m.Step, &m.Timestamp, &m.Value); err != nil {
			return nil, fmt.Errorf("scan history of %s of run %s: %w", key, runID, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// RunIDs runs a search query built by the search package and returns the run ids in order.
func RunIDs(ctx context.Context, conn driver.Conn, query string, args []any) ([]string, error) {
	rows, err := conn.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("search runs: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan run id: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
