package ingest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

// brokerLimit asks the dev broker for its message.maxMsg.bytes, as ingest does at start-up.
func brokerLimit(t *testing.T, cfg kafkax.Config) int {
	t.Helper()
	admin := kafkax.NewAdmin(cfg)
	defer admin.Close()
	n, err := admin.MaxMessageBytes(testenv.Context(t), "")
	if err != nil || n == 0 {
		t.Fatalf("the dev broker's limit: %d %v", n, err)
	}
	return n
}

// eventLimit computes, independently of ingest, the largest transaction with event id id and
// card card that fits in one message of maxMsg bytes once wrapped in its envelope (ingested_at
// counted at its longest, 30 bytes).
func eventLimit(stream, id, card string, maxMsg int) int {
	env := schemas.AppendEventJSON(nil, &schemas.Event{Stream: stream, EventID: id, Entity: card, SchemaVersion: 1,
		EventTime: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), IngestedAt: time.Date(2026, 1, 1, 0, 0, 0, 123456789, time.UTC)})
	return kafkax.MaxValueBytes(maxMsg, len(card)) - len(env)
}

// paddedTxn is a valid transaction of exactly size bytes (whitespace before its closing brace).
func paddedTxn(t *testing.T, id, card string, size int) []byte {
	t.Helper()
	ev := txn(id, card, 1)
	if size < len(ev) {
		t.Fatalf("size %d below %d", size, len(ev))
	}
	return []byte(ev[:len(ev)-1] + strings.Repeat(" ", size-len(ev)) + "}")
}

func decodeDLQ(t *testing.T, m kafka.Message) schemas.DLQRecord {
	t.Helper()
	var rec schemas.DLQRecord
	if err := json.Unmarshal(m.Value, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

// checkTruncated asserts a dead letter too large for the broker arrived truncated with all it
// promises: reasons, a real prefix, the original's sha256 and size, within the broker's limit.
func checkTruncated(t *testing.T, m kafka.Message, original []byte, maxMsg int, reason string) {
	t.Helper()
	rec := decodeDLQ(t, m)
	sum := sha256.Sum256(original)
	prefix, _ := rec.OriginalBytes()
	if !rec.Truncated || rec.OriginalSize != len(original) || rec.OriginalSHA256 != hex.EncodeToString(sum[:]) ||
		len(prefix) < maxMsg/4 || !bytes.HasPrefix(original, prefix) || !strings.Contains(strings.Join(rec.Reasons, "\n"), reason) ||
		kafkax.RecordBatchBytes(len(m.Key), len(m.Value)) > maxMsg {
		t.Fatalf("truncated dead letter: truncated=%v size=%d (want %d) sha=%s reasons=%v prefix=%d bytes value=%d bytes",
			rec.Truncated, rec.OriginalSize, len(original), rec.OriginalSHA256, rec.Reasons, len(prefix), len(m.Value))
	}
}

// Sizes agree end to end over HTTP: the 800 KB event of the bug report is an ordinary
// rejection with a truncated dead letter (never a 503 to retry in vain); an event of exactly
// its limit is accepted and lands in events.<stream>; one byte more is 413 naming the limit.
func TestSizesAgreeWithTheBroker(t *testing.T) {
	s := start(t, nil)
	maxMsg := brokerLimit(t, s.kafka)

	// 800 KB, invalid (unknown field), quotes that double when escaped in the dead letter.
	bad := fmt.Sprintf(`{"transaction_id":"big-1","card_id":"c-1","amount":1,"currency":"EUR","merchant_id":"m","merchant_category":"grocery","country":"DE","channel":"pos","event_time":"2026-11-20T10:00:00Z","note":%q}`,
		strings.Repeat(`"q" `, 133_000)) // %q makes it 800 KB
	if len(bad) < 790_000 || len(bad) > 810_000 {
		t.Fatalf("the reported event is 800 KB, this one %d bytes", len(bad))
	}
	a := s.post(t, s.events(t), "application/json", "", []byte(bad))
	if a.status != http.StatusOK || a.body["rejected"] != 1.0 {
		t.Fatalf("an 800 KB invalid event is an ordinary rejection: %d %s", a.status, a.raw[:min(300, len(a.raw))])
	}
	dlq := readTopic(t, s.kafka, schemas.DLQTopic(s.stream), 1, 10*time.Second)
	if len(dlq) != 1 {
		t.Fatalf("want its dead letter on the DLQ, got %d records", len(dlq))
	}
	checkTruncated(t, dlq[0], []byte(bad), maxMsg, "/note: field is not allowed")

	// The edge, computed from the broker's limit and the envelope.
	limit := eventLimit(s.stream, "edge-1", "c-1", maxMsg)
	fits := paddedTxn(t, "edge-1", "c-1", limit)
	if a := s.post(t, s.events(t), "application/json", "", fits); a.status != http.StatusOK || a.body["accepted"] != 1.0 {
		t.Fatalf("an event of exactly its limit (%d bytes) is accepted: %d %s", limit, a.status, a.raw)
	}
	events := readTopic(t, s.kafka, schemas.EventsTopic(s.stream), 1, 10*time.Second)
	if len(events) != 1 {
		t.Fatalf("want the edge event on events.<stream>, got %d", len(events))
	}
	var ev schemas.Event
	if err := json.Unmarshal(events[0].Value, &ev); err != nil || ev.EventID != "edge-1" || !bytes.Equal(ev.Data, fits) {
		t.Fatalf("edge event: id %q, %d data bytes, %v", ev.EventID, len(ev.Data), err)
	}
	if n := kafkax.RecordBatchBytes(len(events[0].Key), len(events[0].Value)); n > maxMsg || n < maxMsg-10 {
		t.Fatalf("the edge event's record batch is %d bytes; the broker's limit %d (ingested_at may be up to 10 bytes shorter)", n, maxMsg)
	}

	over := paddedTxn(t, "edge-2", "c-1", limit+1)
	a = s.post(t, s.events(t), "application/json", "", over)
	msg, _ := a.body["error"].(map[string]any)
	if want := fmt.Sprintf("size limit of %d bytes", limit); a.status != http.StatusRequestEntityTooLarge ||
		msg["code"] != "event_too_large" || !strings.Contains(fmt.Sprint(msg["message"]), want) {
		t.Fatalf("one byte over: want 413 event_too_large with %q, got %d %s", want, a.status, a.raw)
	}

	// Far over any limit (no need to validate): 413 too; in a batch, one rejection among
	// accepted events.
	huge := fmt.Sprintf(`{"transaction_id":"big-2","note":%q}`, strings.Repeat("x", 1_200_000))
	a = s.post(t, s.events(t), "application/json", "", []byte(huge))
	if msg, _ := a.body["error"].(map[string]any); a.status != http.StatusRequestEntityTooLarge || msg["code"] != "event_too_large" ||
		!strings.Contains(fmt.Sprint(msg["message"]), "size limit of") {
		t.Fatalf("want 413 event_too_large naming the limit, got %d %s", a.status, a.raw[:min(300, len(a.raw))])
	}
	batch := "[" + txn("ok-1", "c-1", 3) + "," + string(over) + "]"
	a = s.post(t, s.events(t), "application/json", "", []byte(batch))
	errs, _ := a.body["errors"].([]any)
	if a.status != http.StatusOK || a.body["accepted"] != 1.0 || len(errs) != 1 {
		t.Fatalf("batch with one oversized event: %d %s", a.status, a.raw)
	}
	if e := errs[0].(map[string]any); e["code"] != "event_too_large" || e["index"] != 1.0 {
		t.Fatalf("the oversized event's rejection: %v", e)
	}

	// Every rejection above is on the DLQ, truncated where it had to be.
	dlq = readTopic(t, s.kafka, schemas.DLQTopic(s.stream), 4, 10*time.Second)
	if len(dlq) != 4 {
		t.Fatalf("want 4 dead letters, got %d", len(dlq))
	}
	for _, m := range dlq {
		rec := decodeDLQ(t, m)
		if rec.OriginalSize == len(over) {
			checkTruncated(t, m, over, maxMsg, fmt.Sprintf("size limit of %d bytes", limit))
		}
	}
}

// A raw.<stream> message the broker took but whose event cannot fit in an envelope is
// dead-lettered truncated, the next message is ingested, and both offsets are committed.
func TestOversizedRawMessageIsDeadLetteredAndCommitted(t *testing.T) {
	s := start(t, nil)
	maxMsg := brokerLimit(t, s.kafka)
	cfg := s.kafka
	cfg.MaxMessageBytes = maxMsg
	p := kafkax.NewProducer(cfg)
	defer p.Close()
	raw := schemas.RawTopic(s.stream)
	big := paddedTxn(t, "raw-big", "c-1", kafkax.MaxValueBytes(maxMsg, len("c-1")))
	ctx := testenv.Context(t)
	if err := p.Produce(ctx, kafkax.Message{Topic: raw, Key: []byte("c-1"), Value: big}); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce(ctx, kafkax.Message{Topic: raw, Key: []byte("c-1"), Value: []byte(txn("raw-ok", "c-1", 2))}); err != nil {
		t.Fatal(err)
	}
	dlq := readTopic(t, s.kafka, schemas.DLQTopic(s.stream), 1, 15*time.Second)
	if len(dlq) != 1 {
		t.Fatalf("want 1 dead letter, got %d", len(dlq))
	}
	checkTruncated(t, dlq[0], big, maxMsg, "size limit of")
	if rec := decodeDLQ(t, dlq[0]); rec.Source == nil || rec.Source.Transport != "kafka" || rec.Source.Topic != raw || string(dlq[0].Key) != "c-1" {
		t.Fatalf("dead letter source %+v key %q", rec.Source, dlq[0].Key)
	}
	if events := readTopic(t, s.kafka, schemas.EventsTopic(s.stream), 1, 10*time.Second); len(events) != 1 {
		t.Fatalf("the message after it is ingested: %d events", len(events))
	}
	client := &kafka.Client{Addr: kafka.TCP(s.kafka.Brokers...), Transport: &kafka.Transport{Dial: (&net.Dialer{}).DialContext}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: s.group, Topics: map[string][]int{raw: {0, 1, 2}}})
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, part := range resp.Topics[raw] {
			sum += max(part.CommittedOffset, 0)
		}
		if sum == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offsets of %s: %d, want 2", raw, sum)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
