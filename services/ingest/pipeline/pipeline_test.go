package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/dedupe"
	"github.com/flywheel-ml/flywheel/services/ingest/pipeline"
	"github.com/flywheel-ml/flywheel/services/ingest/stats"
	"github.com/flywheel-ml/flywheel/services/ingest/validate"
)

// memDedupe is the in-memory Deduper with the same contract as dedupe.Store.
type memDedupe struct {
	mu    sync.Mutex
	state map[string]string
}

func (m *memDedupe) Claim(_ context.Context, stream string, ids []string) ([]dedupe.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]dedupe.State, len(ids))
	for i, id := range ids {
		switch m.state[stream+id] {
		case "":
			m.state[stream+id] = "p"
			out[i] = dedupe.Fresh
		case "d":
			out[i] = dedupe.Duplicate
		default:
			out[i] = dedupe.Unsettled
		}
	}
	return out, nil
}

func (m *memDedupe) set(stream string, ids []string, v string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if v == "" && m.state[stream+id] == "p" {
			delete(m.state, stream+id)
		} else if v != "" {
			m.state[stream+id] = v
		}
	}
}

func (m *memDedupe) Confirm(_ context.Context, s string, ids []string) error {
	m.set(s, ids, "d")
	return nil
}
func (m *memDedupe) Release(_ context.Context, s string, ids []string) error {
	m.set(s, ids, "")
	return nil
}

type memPublisher struct {
	fail error
	msgs []kafkax.Message
}

func (p *memPublisher) Produce(_ context.Context, msgs ...kafkax.Message) error {
	if p.fail != nil {
		return p.fail
	}
	p.msgs = append(p.msgs, msgs...)
	return nil
}

type nopStats struct{}

func (nopStats) Record(string, string, int, int, []stats.Rejection) {}

const txn = `{"transaction_id":"%s","card_id":"c-1","amount":%s,"currency":"EUR","merchant_id":"m","merchant_category":"g","country":"DE","channel":"pos","event_time":"2026-11-22T10:00:00Z"}`

func rec(id, amount string) pipeline.Record {
	return pipeline.Record{Raw: []byte(strings.Replace(strings.Replace(txn, "%s", id, 1), "%s", amount, 1))}
}

func setup(t *testing.T) (*pipeline.Ingestor, *catalog.Stream, *memPublisher, *memDedupe) {
	t.Helper()
	c, err := catalog.Load(schemas.Streams())
	if err != nil {
		t.Fatal(err)
	}
	s, _ := c.Get("transactions")
	now := func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) }
	pub, dd := &memPublisher{}, &memDedupe{state: map[string]string{}}
	in := pipeline.New(validate.New(validate.Config{MaxFutureSkew: time.Minute}, now), dd, pub, nopStats{}, now, zap.NewNop())
	return in, s, pub, dd
}

func TestPartialAcceptanceAndDLQ(t *testing.T) {
	in, s, pub, _ := setup(t)
	bad := rec("t-2", "-3")
	bad.Key = []byte("k")
	bad.Source = schemas.DLQSource{Transport: "kafka", Topic: "raw.transactions", Partition: 1, Offset: 7}
	res, err := in.Ingest(context.Background(), s, "kafka", []pipeline.Record{rec("t-1", "1"), bad, rec("t-1", "1"), rec("t-3", "2"),
		{Raw: []byte("{oops"), Err: errors.New("not JSON")}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 3 || res.Duplicates != 1 || res.Rejected != 2 || res.Errors[0].Index != 1 ||
		res.Errors[0].Reasons[0] != "/amount: must be >= 0, got -3" || res.Errors[1].Index != 4 {
		t.Fatalf("unexpected result %+v", res)
	}
	var events, dlq int
	for _, m := range pub.msgs {
		switch m.Topic {
		case "events.transactions":
			events++
			var e schemas.Event
			if err := json.Unmarshal(m.Value, &e); err != nil || e.Entity != "c-1" || string(m.Key) != "c-1" || e.SchemaVersion != 1 {
				t.Fatalf("bad envelope %s: %v", m.Value, err)
			}
		case "dlq.transactions":
			dlq++
			var d schemas.DLQRecord
			_ = json.Unmarshal(m.Value, &d)
			orig, _ := d.OriginalBytes()
			if d.Source.Offset == 7 && (string(orig) != string(bad.Raw) || string(m.Key) != "k") {
				t.Fatalf("dlq record must keep the original bytes and key: %s", m.Value)
			}
		}
	}
	if events != 2 || dlq != 2 {
		t.Fatalf("want 2 events and 2 dlq records, got %d and %d", events, dlq)
	}
	// Replaying the batch writes nothing new and answers the same counts.
	pub.msgs = nil
	res, err = in.Ingest(context.Background(), s, "kafka", []pipeline.Record{rec("t-1", "1"), rec("t-3", "2")})
	if err != nil || res.Accepted != 2 || res.Duplicates != 2 || len(pub.msgs) != 0 {
		t.Fatalf("replay: %+v %v, %d messages", res, err, len(pub.msgs))
	}
}

func TestFailedPublishReleasesClaims(t *testing.T) {
	in, s, pub, _ := setup(t)
	pub.fail = errors.New("broker down")
	_, err := in.Ingest(context.Background(), s, "http", []pipeline.Record{rec("t-9", "1")})
	if !errors.Is(err, kafkax.ErrTransient) {
		t.Fatalf("want a transient error, got %v", err)
	}
	pub.fail = nil
	res, err := in.Ingest(context.Background(), s, "http", []pipeline.Record{rec("t-9", "1")})
	if err != nil || res.Duplicates != 0 || len(pub.msgs) != 1 {
		t.Fatalf("the retry must write the event: %+v %v %d", res, err, len(pub.msgs))
	}
}
