package pipeline_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/pipeline"
	"github.com/flywheel-ml/flywheel/services/ingest/validate"
)

// padded returns the transaction with event id id, made exactly size bytes long by
// whitespace before its closing brace (whitespace is kept: data is the original bytes).
func padded(t *testing.T, id string, size int) []byte {
	t.Helper()
	ev := strings.Replace(strings.Replace(txn, "%s", id, 1), "%s", "1", 1)
	if size < len(ev) {
		t.Fatalf("size %d below the event's %d bytes", size, len(ev))
	}
	return []byte(ev[:len(ev)-1] + strings.Repeat(" ", size-len(ev)) + "}")
}

// The limit is exact: an event of its limit fills the broker's largest message to the byte
// (with a 30-byte ingested_at), one byte more is event_too_large naming the limit, and every
// dead letter fits.
func TestEventSizeLimitIsExact(t *testing.T) {
	c, err := catalog.Load(schemas.Streams())
	if err != nil {
		t.Fatal(err)
	}
	s, _ := c.Get("transactions")
	now := func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 123456789, time.UTC) }
	pub := &memPublisher{}
	const max = 1048588
	in := pipeline.New(validate.New(validate.Config{MaxFutureSkew: time.Minute}, now), &memDedupe{state: map[string]string{}},
		pub, nopStats{}, now, zap.NewNop()).WithMessageLimit(max)

	// The envelope of this event, computed independently: everything but data, as written.
	env := schemas.AppendEventJSON(nil, &schemas.Event{Stream: "transactions", EventID: "edge-1", Entity: "c-1",
		EventTime: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), SchemaVersion: s.Meta.Version, IngestedAt: now()})
	limit := kafkax.MaxValueBytes(max, len("c-1")) - len(env)
	if bound := in.MaxEventBytes(s); bound <= limit || bound > kafkax.MaxValueBytes(max, 0) {
		t.Fatalf("MaxEventBytes %d must bound the event's limit %d", bound, limit)
	}

	res, err := in.Ingest(context.Background(), s, "http", []pipeline.Record{{Raw: padded(t, "edge-1", limit)}})
	if err != nil || res.Accepted != 1 || len(pub.msgs) != 1 {
		t.Fatalf("an event of exactly its limit (%d bytes) is accepted: %+v %v", limit, res, err)
	}
	m := pub.msgs[0]
	if got := kafkax.RecordBatchBytes(len(m.Key), len(m.Value)); got != max {
		t.Fatalf("the record batch is %d bytes, want exactly the broker's %d", got, max)
	}

	pub.msgs = nil
	res, err = in.Ingest(context.Background(), s, "http", []pipeline.Record{{Raw: padded(t, "edge-2", limit+1)},
		{Raw: padded(t, "edge-3", 300)}, {Raw: padded(t, "edge-4", 2*max)}})
	if err != nil || res.Accepted != 1 || res.Rejected != 2 {
		t.Fatalf("one byte over: %+v %v", res, err)
	}
	for i, rej := range res.Errors {
		if rej.Code != pipeline.CodeEventTooLarge {
			t.Fatalf("rejection %d: code %q", i, rej.Code)
		}
	}
	if want := "size limit of " + itoa(limit) + " bytes"; !strings.Contains(res.Errors[0].Reasons[0], want) {
		t.Fatalf("the reason must name the limit (%q): %s", want, res.Errors[0].Reasons[0])
	}
	if want := "size limit of " + itoa(in.MaxEventBytes(s)) + " bytes"; !strings.Contains(res.Errors[1].Reasons[0], want) {
		t.Fatalf("an event over any limit names the stream's bound (%q): %s", want, res.Errors[1].Reasons[0])
	}
	for _, m := range pub.msgs {
		if m.Topic != schemas.DLQTopic("transactions") {
			continue
		}
		if kafkax.RecordBatchBytes(len(m.Key), len(m.Value)) > max {
			t.Fatalf("a dead letter of %d bytes does not fit", len(m.Value))
		}
		var d schemas.DLQRecord
		if err := json.Unmarshal(m.Value, &d); err != nil || !d.Truncated || d.OriginalSize < limit {
			t.Fatalf("dead letter of an oversized event: truncated=%v size=%d %v", d.Truncated, d.OriginalSize, err)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
