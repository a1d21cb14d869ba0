// Package eventlog writes events.<stream> to the ClickHouse event log (table events), in
// batches, committing offsets only after the insert. Replays are absorbed by the table's
// ReplacingMergeTree on (stream, event_id).
package eventlog

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/go-json-experiment/json"
	"github.com/segmentio/kafka-go"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
)

// Columns of the events table this writer fills.
var Columns = []string{"stream", "event_id", "event_time", "event_time_ms", "entity", "schema_version", "payload", "ingested_at", "ingested_at_ms"}

// Handler returns the kafkax handler writing a batch of envelopes to conn's events table.
// An envelope that does not decode fails the batch with a permanent error (the consumer
// isolates and dead-letters it); a failed insert is transient and retried.
func Handler(conn driver.Conn) func(ctx context.Context, batch []kafka.Message) error {
	return func(ctx context.Context, batch []kafka.Message) error {
		rows := make([][]any, 0, len(batch))
		for _, m := range batch {
			var e schemas.Event
			if err := json.Unmarshal(m.Value, &e); err != nil {
				return fmt.Errorf("decode envelope at %s/%d/%d: %w", m.Topic, m.Partition, m.Offset, err)
			}
			if e.Stream == "" || e.EventID == "" {
				return fmt.Errorf("envelope at %s/%d/%d lacks stream or event_id", m.Topic, m.Partition, m.Offset)
			}
			rows = append(rows, []any{e.Stream, e.EventID, e.EventTime.UTC(), e.EventTime.UnixMilli(), e.Entity,
				uint32(e.SchemaVersion), string(e.Data), e.IngestedAt.UTC(), e.IngestedAt.UnixMilli()})
		}
		if err := chx.Insert(ctx, conn, "events", Columns, rows); err != nil {
			return kafkax.Transient(err)
		}
		return nil
	}
}
