package features_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

// produceLogged produces txns to events.<stream> and writes them to the event log the way
// ingest does (same event ids and ingestion times), so a rebuild has the log to replay.
func (s *service) produceLogged(t *testing.T, txns []txn) {
	t.Helper()
	conn, err := chx.Open(testenv.Context(t), s.ch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := kafkax.NewProducer(s.kafka)
	defer p.Close()
	msgs := make([]kafkax.Message, len(txns))
	rows := make([][]any, len(txns))
	for i, x := range txns {
		ingested := time.Now().UTC()
		data := fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"amount":%v,"currency":"EUR","merchant_id":%q,"merchant_category":"grocery","country":%q,"channel":"pos","event_time":%q}`,
			x.id, x.card, x.amount, x.merchant, x.country, x.ts.Format(time.RFC3339Nano))
		env := schemas.AppendEventJSON(nil, &schemas.Event{Stream: s.stream, EventID: x.id, EventTime: x.ts, Entity: x.card,
			SchemaVersion: 1, IngestedAt: ingested, Data: json.RawMessage(data)})
		msgs[i] = kafkax.Message{Topic: schemas.EventsTopic(s.stream), Key: []byte(x.card), Value: env}
		rows[i] = []any{s.stream, x.id, x.ts, x.ts.UnixMilli(), x.card, uint32(1), data, ingested, ingested.UnixMilli()}
	}
	if err := chx.Insert(testenv.Context(t), conn, "events", []string{"stream", "event_id", "event_time", "event_time_ms",
		"entity", "schema_version", "payload", "ingested_at", "ingested_at_ms"}, rows); err != nil {
		t.Fatal(err)
	}
	if err := p.Produce(testenv.Context(t), msgs...); err != nil {
		t.Fatal(err)
	}
}

func (s *service) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") {
			return line[strings.LastIndex(line, " ")+1:]
		}
	}
	return ""
}

// epoch returns the view's stored epoch ("" when absent).
func (s *service) epoch(t *testing.T) string {
	t.Helper()
	client, _ := testenv.Redis(t)
	keys, err := client.Keys(context.Background(), s.prefix+"epoch:"+s.view+":*").Result()
	if err != nil || len(keys) > 1 {
		t.Fatalf("epoch keys %v: %v", keys, err)
	}
	if len(keys) == 0 {
		return ""
	}
	return client.Get(context.Background(), keys[0]).Val()
}

// flush deletes every online-store key of the service, as a Redis restart without
// persistence or a FLUSHDB would (the shared Redis itself is left alone).
func (s *service) flush(t *testing.T) {
	t.Helper()
	client, _ := testenv.Redis(t)
	ctx := context.Background()
	iter := client.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
	n := 0
	for iter.Next(ctx) {
		client.Del(ctx, iter.Val())
		n++
	}
	if n == 0 {
		t.Fatal("nothing to flush: the online store held no keys")
	}
}

// After the online store loses its state, lookups never serve the partial state as PRESENT:
// they answer 503 online_store_rebuilding until the view is rebuilt from the event log, and
// then the values are exact again — including events that arrived after the loss.
func TestOnlineStoreLossIsDetectedAndRepaired(t *testing.T) {
	s := start(t)
	rng := rand.New(rand.NewPCG(5, 6))
	now := time.Now().UTC().Truncate(time.Millisecond)
	txns := generate(rng, 8, 600, now.Add(-time.Minute))
	s.produceLogged(t, txns)
	cards := make([]string, 8)
	for i := range cards {
		cards[i] = fmt.Sprintf("c-%d", i)
	}
	s.waitApplied(t, cards, txns, now)
	before := s.epoch(t)
	if before == "" {
		t.Fatal("no epoch written with the state")
	}

	s.flush(t)
	body, _ := json.Marshal(map[string]any{"feature_service": s.view, "entities": map[string]any{"card_id": cards}, "at": now})
	resp, err := http.Post(s.url+"/get-online-features", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "online_store_rebuilding") {
		t.Fatalf("right after the loss a lookup must answer 503 online_store_rebuilding, got %d %s", resp.StatusCode, b)
	}

	later := generate(rng, 8, 50, now)
	for i := range later {
		later[i].id = fmt.Sprintf("late-%d", i)
		later[i].ts = now.Add(-time.Duration(i) * time.Second)
	}
	s.produceLogged(t, later)
	all := append(append([]txn(nil), txns...), later...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Post(s.url+"/get-online-features", "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "online_store_rebuilding") {
			t.Fatalf("while rebuilding: %d %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			t.Fatal("the view was not rebuilt within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.waitApplied(t, cards, all, now)
	if got := s.metric(t, "flywheel_features_online_rebuilds_total"); got != "1" {
		t.Fatalf("rebuilds counted: %q, want 1", got)
	}
	if got := s.metric(t, "flywheel_features_online_rebuilding"); got != "0" {
		t.Fatalf("rebuilding gauge after the rebuild: %q, want 0", got)
	}
	if after := s.epoch(t); after == "" || after == before || strings.HasPrefix(after, "rebuilding-") {
		t.Fatalf("epoch before the loss %q, after the rebuild %q: want a new, final one", before, after)
	}
	conn, err := chx.Open(testenv.Context(t), s.ch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n, events uint64
	if err := conn.QueryRow(testenv.Context(t), "SELECT count(), sum(events) FROM feature_rebuilds WHERE view = ?", s.view).Scan(&n, &events); err != nil {
		t.Fatal(err)
	}
	if n != 1 || events < uint64(len(txns)) {
		t.Fatalf("feature_rebuilds: %d rows replaying %d events, want 1 row replaying at least %d", n, events, len(txns))
	}
}

// A partial loss — Redis came back from an append-only file missing its last writes, epoch
// intact — shows as stored offsets behind the consumer group; the next batch rebuilds.
func TestOnlineStoreBehindTheConsumerIsRebuilt(t *testing.T) {
	s := start(t)
	rng := rand.New(rand.NewPCG(7, 8))
	now := time.Now().UTC().Truncate(time.Millisecond)
	txns := generate(rng, 6, 400, now.Add(-time.Minute))
	s.produceLogged(t, txns)
	cards := make([]string, 6)
	for i := range cards {
		cards[i] = fmt.Sprintf("c-%d", i)
	}
	s.waitApplied(t, cards, txns, now)

	client, _ := testenv.Redis(t)
	ctx := context.Background()
	iter := client.Scan(ctx, 0, s.prefix+"o:*", 100).Iterator()
	rewound := 0
	for iter.Next(ctx) {
		n, err := client.Get(ctx, iter.Val()).Int64()
		if err != nil || n < 30 {
			continue
		}
		client.Set(ctx, iter.Val(), n-30, 0) // the last writes of this partition are "lost"
		rewound++
	}
	if rewound == 0 {
		t.Fatal("no partition offset to rewind")
	}
	later := generate(rng, 6, 60, now)
	for i := range later {
		later[i].id = fmt.Sprintf("after-%d", i)
		later[i].ts = now.Add(-time.Duration(i) * time.Second)
	}
	s.produceLogged(t, later)
	s.waitApplied(t, cards, append(append([]txn(nil), txns...), later...), now)
	if got := s.metric(t, "flywheel_features_online_rebuilds_total"); got != "1" {
		t.Fatalf("rebuilds counted: %q, want 1", got)
	}
}

// Redis lost while the service was down (the "first start on an empty store with a non-empty
// event log" case): the new process rebuilds the view before it is ready, including what the
// previous process applied in its last seconds (committed to Kafka, never delivered again),
// then applies what arrived while it was down — exact counts.
func TestOnlineStoreLostWhileDownIsRebuiltAtStart(t *testing.T) {
	s := start(t)
	rng := rand.New(rand.NewPCG(9, 10))
	now := time.Now().UTC().Truncate(time.Millisecond)
	txns := generate(rng, 5, 300, now.Add(-time.Minute))
	s.produceLogged(t, txns)
	cards := make([]string, 5)
	for i := range cards {
		cards[i] = fmt.Sprintf("c-%d", i)
	}
	s.waitApplied(t, cards, txns, now)
	if got := s.metric(t, "flywheel_features_online_rebuilds_total"); got != "" && got != "0" {
		t.Fatalf("a first start on an empty store counted a rebuild: %q", got)
	}

	s.stop()
	s.flush(t)
	down := generate(rng, 5, 40, now)
	for i := range down {
		down[i].id = fmt.Sprintf("down-%d", i)
		down[i].ts = now.Add(-time.Duration(i) * time.Second)
	}
	s.produceLogged(t, down)
	s.run(t) // ready only once the first check, and so the rebuild, is done
	if s.epoch(t) == "" {
		t.Fatal("no epoch after the rebuild")
	}
	s.waitApplied(t, cards, append(append([]txn(nil), txns...), down...), now)
	if got := s.metric(t, "flywheel_features_online_rebuilds_total"); got != "1" {
		t.Fatalf("rebuilds counted: %q, want 1", got)
	}
	conn, err := chx.Open(testenv.Context(t), s.ch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var reason string
	if err := conn.QueryRow(testenv.Context(t), "SELECT any(reason) FROM feature_rebuilds WHERE view = ?", s.view).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, "while the service was down") {
		t.Fatalf("feature_rebuilds reason %q", reason)
	}
}
