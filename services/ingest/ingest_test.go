package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest"
)

// service is a running ingest with a stream catalog, topics, group, Redis prefix and
// ClickHouse database of the test's own.
type service struct {
	url    string
	stream string
	group  string // of raw.<stream>
	kafka  kafkax.Config
	ch     chx.Config
}

func start(t *testing.T, extra map[string]string) *service {
	t.Helper()
	kcfg := testenv.Kafka(t)
	redisCfg := testenv.RedisConfig(t)
	ch := testenv.ClickHouseConfig(t)
	stream := testenv.Unique(t, "tx")
	dir := t.TempDir()
	raw, _ := fs(t, "transactions.json")
	if err := os.WriteFile(filepath.Join(dir, stream+".json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	addr, group := testenv.FreeAddr(t), testenv.Unique(t, "g")
	vars := map[string]string{
		"FLYWHEEL_INGEST_ADDR":           addr,
		"FLYWHEEL_INGEST_STREAMS_DIR":    dir,
		"FLYWHEEL_INGEST_GROUP":          group,
		"FLYWHEEL_INGEST_REDIS_PREFIX":   testenv.Unique(t, "t") + ":",
		"FLYWHEEL_INGEST_STATS_INTERVAL": "200ms",
		"FLYWHEEL_CLICKHOUSE_DATABASE":   ch.Database,
		"FLYWHEEL_REDIS_ADDR":            redisCfg.Addr,
		"FLYWHEEL_LOG_LEVEL":             "warn",
	}
	for k, v := range extra {
		vars[k] = v
	}
	var cfg ingest.Config
	lookup := func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}
	if err := config.Load(&cfg, nil, lookup, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ingest.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest stopped with %v", err)
		}
		admin := kafkax.NewAdmin(kcfg)
		_ = admin.DeleteTopics(context.Background(), schemas.RawTopic(stream), schemas.EventsTopic(stream), schemas.DLQTopic(stream))
	})
	s := &service{url: "http://" + addr, stream: stream, group: group, kafka: kcfg, ch: ch}
	testenv.WaitReady(t, s.url, done)
	return s
}

func fs(t *testing.T, name string) ([]byte, error) {
	t.Helper()
	f, err := schemas.Streams().Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return io.ReadAll(f)
}

func txn(id, card string, amount float64) string {
	return fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"amount":%g,"currency":"EUR","merchant_id":"m-7","merchant_category":"grocery","country":"DE","channel":"pos","event_time":"2026-11-20T10:00:00Z"}`, id, card, amount)
}

type answer struct {
	status int
	body   map[string]any
	raw    string
}

func (s *service) post(t *testing.T, path, contentType, token string, body []byte) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s answered %d with non-JSON %q", path, resp.StatusCode, raw)
	}
	return answer{resp.StatusCode, m, string(raw)}
}

func (s *service) events(t *testing.T) string { return "/v1/streams/" + s.stream + "/events" }

// readTopic returns every message of topic (all partitions) that arrives within wait.
func readTopic(t *testing.T, cfg kafkax.Config, topic string, want int, wait time.Duration) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	deadline := time.Now().Add(wait)
	for p := range cfg.Partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond, MaxBytes: 4 << 20})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				break
			}
			out = append(out, m)
		}
		r.Close()
	}
	if len(out) < want && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		return readTopic(t, cfg, topic, want, time.Until(deadline))
	}
	return out
}

func TestHTTPAnswers(t *testing.T) {
	s := start(t, map[string]string{"FLYWHEEL_INGEST_MAX_BODY_BYTES": "1048576", "FLYWHEEL_INGEST_MAX_EVENTS": "1000"})
	path := s.events(t)

	one := s.post(t, path, "application/json", "", []byte(txn("t-1", "c-1", 5)))
	if one.status != 200 || one.body["accepted"] != 1.0 || one.body["rejected"] != 0.0 {
		t.Fatalf("single event: %d %s", one.status, one.raw)
	}

	batch := "[" + txn("t-2", "c-1", 7) + "," + txn("t-3", "c-2", -1) + "," + txn("t-4", "c-2", 1) + `,{"transaction_id":"t-5"}]`
	part := s.post(t, path, "application/json", "", []byte(batch))
	errs, _ := part.body["errors"].([]any)
	if part.status != 200 || part.body["accepted"] != 2.0 || part.body["rejected"] != 2.0 || len(errs) != 2 {
		t.Fatalf("partial acceptance: %d %s", part.status, part.raw)
	}
	first := errs[0].(map[string]any)
	if first["index"] != 1.0 || !strings.Contains(fmt.Sprint(first["reasons"]), "/amount: must be >= 0, got -1") {
		t.Fatalf("reasons must name the field: %s", part.raw)
	}

	nd := txn("t-6", "c-3", 1) + "\n{broken\n" + txn("t-1", "c-1", 5) + "\n"
	ndj := s.post(t, path, "application/x-ndjson", "", []byte(nd))
	if ndj.status != 200 || ndj.body["accepted"] != 2.0 || ndj.body["duplicates"] != 1.0 || ndj.body["rejected"] != 1.0 {
		t.Fatalf("ndjson with a broken line and a duplicate: %d %s", ndj.status, ndj.raw)
	}

	cases := []struct {
		name, contentType string
		body              []byte
		status            int
		code              string
	}{
		{"unparseable", "application/json", []byte(`{"transaction_id":`), 400, "invalid_body"},
		{"empty", "application/json", nil, 400, "empty_body"},
		{"scalar", "application/json", []byte(`42`), 400, "invalid_body"},
		{"NaN", "application/json", []byte(`{"amount": NaN}`), 400, "invalid_body"},
		{"broken array", "application/json", []byte(`[` + txn("t-7", "c", 1) + `,`), 400, "invalid_body"},
		{"10 MB body", "application/json", bytes.Repeat([]byte(" "), 10<<20), 413, "body_too_large"},
		{"too many events", "application/json", []byte("[" + strings.Repeat("{},", 1000) + "{}]"), 413, "too_many_events"},
	}
	for _, tc := range cases {
		a := s.post(t, path, tc.contentType, "", tc.body)
		code, _ := a.body["error"].(map[string]any)["code"].(string)
		if a.status != tc.status || code != tc.code {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, a.status, a.raw, tc.status, tc.code)
		}
	}
	unknown := s.post(t, "/v1/streams/nope/events", "application/json", "", []byte(txn("x", "y", 1)))
	if unknown.status != 404 || !strings.Contains(unknown.raw, s.stream) {
		t.Errorf("unknown stream: %d %s", unknown.status, unknown.raw)
	}

	// Valid events of those requests reached events.<stream> once each; rejects reached the DLQ
	// with the original bytes.
	msgs := readTopic(t, s.kafka, schemas.EventsTopic(s.stream), 4, 10*time.Second)
	ids := map[string]int{}
	for _, m := range msgs {
		var e schemas.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		ids[e.EventID]++
		if string(m.Key) != e.Entity {
			t.Errorf("events must be keyed by entity: key %q entity %q", m.Key, e.Entity)
		}
	}
	if len(msgs) != 4 || len(ids) != 4 {
		t.Fatalf("want t-1, t-2, t-4 and t-6 once each, got %d messages %v", len(msgs), ids)
	}
	dlq := readTopic(t, s.kafka, schemas.DLQTopic(s.stream), 3, 10*time.Second)
	if len(dlq) != 3 {
		t.Fatalf("want 3 DLQ records, got %d", len(dlq))
	}
	found := false
	for _, m := range dlq {
		var d schemas.DLQRecord
		_ = json.Unmarshal(m.Value, &d)
		orig, _ := d.OriginalBytes()
		if string(orig) == "{broken" && d.Source.Transport == "http" && *d.Source.Index == 1 && len(d.Reasons) == 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("the broken NDJSON line must be dead-lettered exactly with its index")
	}

	// The event log and statistics reach ClickHouse.
	conn, err := chx.Open(context.Background(), s.ch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitCount(t, func() uint64 {
		var n uint64
		_ = conn.QueryRow(context.Background(), "SELECT uniqExact(event_id) FROM events WHERE stream = ?", s.stream).Scan(&n)
		return n
	}, 4)
	waitCount(t, func() uint64 {
		var n uint64
		_ = conn.QueryRow(context.Background(), "SELECT sum(events) FROM ingest_stats WHERE stream = ? AND outcome = 'rejected'", s.stream).Scan(&n)
		return n
	}, 3)

	resp, err := http.Get(s.url + "/v1/streams")
	if err != nil {
		t.Fatal(err)
	}
	var listing struct {
		Streams []struct {
			Name          string `json:"name"`
			SchemaVersion int    `json:"schema_version"`
		} `json:"streams"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&listing)
	resp.Body.Close()
	if len(listing.Streams) != 1 || listing.Streams[0].Name != s.stream || listing.Streams[0].SchemaVersion != 1 {
		t.Fatalf("stream listing: %+v", listing)
	}
}

func waitCount(t *testing.T, count func() uint64, want uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got uint64
	for time.Now().Before(deadline) {
		if got = count(); got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("want %d, got %d", want, got)
}

func TestAuthScopes(t *testing.T) {
	s := start(t, map[string]string{"FLYWHEEL_AUTH_TOKENS": "writer:ingest;reader:read"})
	body := []byte(txn("a-1", "c", 1))
	if a := s.post(t, s.events(t), "application/json", "", body); a.status != 401 {
		t.Errorf("without a token: %d %s", a.status, a.raw)
	}
	if a := s.post(t, s.events(t), "application/json", "reader", body); a.status != 403 {
		t.Errorf("without the ingest scope: %d %s", a.status, a.raw)
	}
	if a := s.post(t, s.events(t), "application/json", "writer", body); a.status != 200 {
		t.Errorf("with the ingest scope: %d %s", a.status, a.raw)
	}
}

// Events produced to raw.<stream> flow to events.<stream>, the DLQ and ClickHouse; producing
// the same events again adds nothing.
func TestRawTopicFlowAndReplay(t *testing.T) {
	s := start(t, nil)
	p := kafkax.NewProducer(s.kafka)
	defer p.Close()
	var msgs []kafkax.Message
	for i := range 300 {
		card := fmt.Sprintf("c-%d", i%10)
		msgs = append(msgs, kafkax.Message{Topic: schemas.RawTopic(s.stream), Key: []byte(card), Value: []byte(txn(fmt.Sprintf("r-%d", i), card, float64(i)))})
	}
	for i := range 10 {
		msgs = append(msgs, kafkax.Message{Topic: schemas.RawTopic(s.stream), Value: []byte(txn(fmt.Sprintf("bad-%d", i), "c", -1))})
	}
	msgs = append(msgs, kafkax.Message{Topic: schemas.RawTopic(s.stream), Value: []byte("not json at all")},
		kafkax.Message{Topic: schemas.RawTopic(s.stream), Value: []byte("[" + txn("arr-1", "c-1", 1) + "," + txn("arr-2", "c-2", 2) + "]")})
	ctx := testenv.Context(t)
	if err := p.Produce(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	conn, err := chx.Open(ctx, s.ch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	count := func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM events FINAL WHERE stream = ?", s.stream).Scan(&n)
		return n
	}
	waitCount(t, count, 302)
	if dlq := readTopic(t, s.kafka, schemas.DLQTopic(s.stream), 11, 10*time.Second); len(dlq) != 11 {
		t.Fatalf("want 11 DLQ records, got %d", len(dlq))
	}

	if err := p.Produce(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	waitCount(t, func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT sum(events) FROM ingest_stats WHERE stream = ? AND outcome = 'duplicate'", s.stream).Scan(&n)
		return n
	}, 302)
	if n := count(); n != 302 {
		t.Fatalf("replay changed the event log: %d rows", n)
	}
	if events := readTopic(t, s.kafka, schemas.EventsTopic(s.stream), 302, 5*time.Second); len(events) != 302 {
		t.Fatalf("replay must add no events.<stream> records: %d", len(events))
	}
}
