package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

// TestBackfillAfterRedisLoss: after the online store is wiped, lookups never serve the partial
// state — they answer 503 online_store_rebuilding until the features service has rebuilt the
// view from the event log by itself — then serve exactly the values served before; a manual
// backfill gives the same values, and live processing continues without counting any event
// twice.
func TestBackfillAfterRedisLoss(t *testing.T) {
	kcfg := testenv.Kafka(t)
	ch := testenv.ClickHouseConfig(t)
	redis, prefix := testenv.Redis(t)
	stream, view, streamsDir, viewsDir := privateCatalog(t, t.TempDir())
	featuresAddr := freePort(t)
	vars := map[string]string{"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_LOG_LEVEL": "warn",
		"FLYWHEEL_INGEST_STREAMS_DIR": streamsDir, "FLYWHEEL_INGEST_GROUP": testenv.Unique(t, "g"),
		"FLYWHEEL_INGEST_REDIS_PREFIX": prefix + "ingest:", "FLYWHEEL_INGEST_ADDR": freePort(t),
		"FLYWHEEL_FEATURES_VIEWS_DIR": viewsDir, "FLYWHEEL_FEATURES_GROUP": testenv.Unique(t, "g"),
		"FLYWHEEL_FEATURES_REDIS_PREFIX": prefix + "f:", "FLYWHEEL_FEATURES_ADDR": featuresAddr}
	done := runServices(t, vars, 2) // ingest and features
	base := "http://" + featuresAddr
	testenv.WaitReady(t, base, done)

	now := time.Now().UTC().Truncate(time.Second)
	p := kafkax.NewProducer(kcfg)
	defer p.Close()
	produce := func(from, n int) {
		msgs := make([]kafkax.Message, n)
		for i := range n {
			k := from + i
			card := fmt.Sprintf("c-%d", k%20)
			ts := now.Add(-3 * time.Hour).Add(time.Duration(k) * time.Second * 2)
			msgs[i] = kafkax.Message{Topic: schemas.RawTopic(stream), Key: []byte(card), Value: fmt.Appendf(nil,
				`{"transaction_id":"b-%d","card_id":%q,"amount":%d.5,"currency":"EUR","merchant_id":"m-%d","merchant_category":"grocery","country":"DE","channel":"pos","event_time":%q}`,
				k, card, k%50, k%9, ts.Format(time.RFC3339))}
		}
		if err := p.Produce(testenv.Context(t), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	cards := make([]string, 20)
	for i := range cards {
		cards[i] = fmt.Sprintf("c-%d", i)
	}
	names := []string{view + ":txn_count_7d", view + ":txn_count_1h", view + ":amount_sum_24h", view + ":distinct_merchants_24h", view + ":last_country"}
	at := now.Add(time.Hour)
	lookup := func() [][]any {
		body, _ := json.Marshal(map[string]any{"features": names, "entities": map[string]any{"card_id": cards}, "at": at})
		resp, err := http.Post(base+"/get-online-features", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(b, []byte("online_store_rebuilding")) {
				t.Fatalf("lookup: %d %s", resp.StatusCode, b)
			}
			return nil // being rebuilt
		}
		var r struct {
			Results []struct{ Values []any } `json:"results"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		var cols [][]any
		for _, c := range r.Results[1:] {
			cols = append(cols, c.Values)
		}
		return cols
	}
	total := func(cols [][]any) float64 {
		if cols == nil {
			return -1
		}
		s := 0.0
		for _, v := range cols[0] {
			f, _ := v.(float64)
			s += f
		}
		return s
	}

	produce(0, 2000)
	waitUntil(t, "2,000 events applied", func() bool { return total(lookup()) == 2000 })
	before := lookup()

	// Lose the online store.
	iter := redis.Scan(testenv.Context(t), 0, prefix+"f:*", 1000).Iterator()
	for iter.Next(testenv.Context(t)) {
		redis.Del(testenv.Context(t), iter.Val())
	}
	if got := lookup(); got != nil {
		t.Fatalf("right after wiping Redis a lookup must answer 503 online_store_rebuilding, got %v", got)
	}
	var rebuilt [][]any
	waitUntil(t, "the automatic rebuild", func() bool { rebuilt = lookup(); return rebuilt != nil })
	if fmt.Sprint(rebuilt) != fmt.Sprint(before) {
		t.Fatalf("the automatic rebuild did not restore the served values:\nbefore %v\nafter  %v", before, rebuilt)
	}

	body, _ := json.Marshal(map[string]any{"view": view, "max_wait": "20s"})
	resp, err := http.Post(base+"/v1/features/backfill", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("backfill: %d %s", resp.StatusCode, out)
	}
	t.Logf("backfill: %s", out)
	after := lookup()
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("backfill did not restore the served values:\nbefore %v\nafter  %v", before, after)
	}

	produce(2000, 500)
	waitUntil(t, "2,500 events applied after the backfill", func() bool { return total(lookup()) >= 2500 })
	time.Sleep(time.Second)
	if got := total(lookup()); got != 2500 {
		t.Fatalf("after the backfill live processing counted %v events, want 2500", got)
	}
}
