package features_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/features"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

type service struct {
	url, view, stream string
	prefix            string // Redis key prefix of the online store
	kafka             kafkax.Config
	ch                chx.Config
	vars              map[string]string // configuration, without the address
	stop              func()            // stops the running service (idempotent)
}

// start runs the features service with a copy of card_activity renamed to a view and source
// stream of the test's own.
func start(t *testing.T) *service {
	t.Helper()
	kcfg := testenv.Kafka(t)
	redisCfg := testenv.RedisConfig(t)
	ch := testenv.ClickHouseConfig(t)
	view, stream := testenv.Unique(t, "ca"), testenv.Unique(t, "tx")
	f, _ := schemas.FeatureViews().Open("card_activity.yaml")
	raw, _ := io.ReadAll(f)
	f.Close()
	def := strings.Replace(strings.Replace(string(raw), "name: card_activity", "name: "+view, 1), "source: transactions", "source: "+stream, 1)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "view.yaml"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Topics(t, kcfg, schemas.EventsTopic(stream), schemas.DLQTopic(stream))
	prefix := testenv.Unique(t, "t") + ":"
	s := &service{view: view, stream: stream, kafka: kcfg, ch: ch, prefix: prefix, vars: map[string]string{
		"FLYWHEEL_FEATURES_VIEWS_DIR": dir, "FLYWHEEL_FEATURES_GROUP": testenv.Unique(t, "g"), "FLYWHEEL_FEATURES_REDIS_PREFIX": prefix,
		"FLYWHEEL_CLICKHOUSE_DATABASE": ch.Database, "FLYWHEEL_REDIS_ADDR": redisCfg.Addr, "FLYWHEEL_LOG_LEVEL": "warn",
		"FLYWHEEL_FEATURES_STATS_INTERVAL": "200ms"}}
	s.run(t)
	return s
}

// run starts the service (again) with s's view, key prefix, database and consumer group, on
// a fresh address, and waits until it is ready.
func (s *service) run(t *testing.T) {
	t.Helper()
	addr := testenv.FreeAddr(t)
	vars := map[string]string{"FLYWHEEL_FEATURES_ADDR": addr}
	for k, v := range s.vars {
		vars[k] = v
	}
	var cfg features.Config
	if err := config.Load(&cfg, nil, func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	}, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- features.Run(ctx, cfg) }()
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("features stopped with %v", err)
		}
	}
	t.Cleanup(s.stop)
	s.url = "http://" + addr
	testenv.WaitReady(t, s.url, done)
}

type txn struct {
	id, card, merchant, country string
	amount                      float64
	ts                          time.Time
}

func (s *service) produce(t *testing.T, txns []txn) {
	t.Helper()
	p := kafkax.NewProducer(s.kafka)
	defer p.Close()
	msgs := make([]kafkax.Message, len(txns))
	for i, x := range txns {
		data := fmt.Sprintf(`{"transaction_id":%q,"card_id":%q,"amount":%v,"currency":"EUR","merchant_id":%q,"merchant_category":"grocery","country":%q,"channel":"pos","event_time":%q}`,
			x.id, x.card, x.amount, x.merchant, x.country, x.ts.Format(time.RFC3339Nano))
		env := schemas.AppendEventJSON(nil, &schemas.Event{Stream: s.stream, EventID: x.id, EventTime: x.ts, Entity: x.card,
			SchemaVersion: 1, IngestedAt: time.Now(), Data: json.RawMessage(data)})
		msgs[i] = kafkax.Message{Topic: schemas.EventsTopic(s.stream), Key: []byte(x.card), Value: env}
	}
	if err := p.Produce(testenv.Context(t), msgs...); err != nil {
		t.Fatal(err)
	}
}

func (s *service) post(t *testing.T, path string, body any) []byte {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, out)
	}
	return out
}

type onlineResponse struct {
	Metadata struct {
		FeatureNames []string `json:"feature_names"`
	} `json:"metadata"`
	Results []struct {
		Values   []any    `json:"values"`
		Statuses []string `json:"statuses"`
	} `json:"results"`
}

// lookup returns feature -> card -> value at at.
func (s *service) lookup(t *testing.T, cards []string, at time.Time) map[string]map[string]any {
	t.Helper()
	var resp onlineResponse
	if err := json.Unmarshal(s.post(t, "/get-online-features", map[string]any{"feature_service": s.view,
		"entities": map[string]any{"card_id": cards}, "at": at}), &resp); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for i, name := range resp.Metadata.FeatureNames[1:] {
		out[name] = map[string]any{}
		for j, c := range cards {
			out[name][c] = resp.Results[i+1].Values[j]
		}
	}
	return out
}

// expected computes the documented semantics directly from the events, independently of the
// aggregation engine.
func expected(v *views.View, txns []txn, card string, at time.Time) map[string]any {
	t := at.UnixMilli()
	out := map[string]any{}
	for _, f := range v.Features {
		w := time.Duration(f.Window).Milliseconds()
		var in []txn
		for _, x := range txns {
			ts := x.ts.UnixMilli()
			if x.card != card || ts > t {
				continue
			}
			if views.Windowed(f.Agg) {
				size := f.Tile.Milliseconds()
				from := (t/size)*size - w + size
				if ts < from {
					continue
				}
			} else if w > 0 && ts <= t-w {
				continue
			}
			in = append(in, x)
		}
		var sum, mx float64
		mx = math.Inf(-1)
		distinct := map[string]bool{}
		for _, x := range in {
			sum += x.amount
			mx = math.Max(mx, x.amount)
			distinct[x.merchant+x.country] = true
		}
		switch {
		case f.Agg == views.Count:
			out[f.Name] = float64(len(in))
		case f.Agg == views.Sum:
			out[f.Name] = sum
		case f.Agg == views.Avg && len(in) > 0:
			out[f.Name] = sum / float64(len(in))
		case f.Agg == views.Max && len(in) > 0:
			out[f.Name] = mx
		case f.Agg == views.CountDistinct:
			set := map[string]bool{}
			for _, x := range in {
				if f.Field == "merchant_id" {
					set[x.merchant] = true
				} else {
					set[x.country] = true
				}
			}
			out[f.Name] = float64(len(set))
		case f.Agg == views.Last && len(in) > 0:
			last := in[0]
			for _, x := range in {
				if !x.ts.Before(last.ts) {
					last = x
				}
			}
			if f.Field == "country" {
				out[f.Name] = last.country
			} else {
				out[f.Name] = last.ts.Format(time.RFC3339Nano)
			}
		default:
			out[f.Name] = f.Default
		}
	}
	return out
}

// checkStats waits for feature_stats to show the applied updates, some lookups with their
// values, and a fresh newest event time.
func (s *service) checkStats(t *testing.T, updates int) {
	t.Helper()
	conn, err := chx.Open(testenv.Context(t), s.ch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var applied, lookups, values uint64
		var newest int64
		err := conn.QueryRow(testenv.Context(t), `SELECT sum(updates), sum(lookups), sum(lookup_values), max(newest_event_ms)
			FROM feature_stats WHERE view = ?`, s.view).Scan(&applied, &lookups, &values, &newest)
		if err == nil && applied == uint64(updates) && lookups > 0 && values > 0 && time.Since(time.UnixMilli(newest)) < 10*time.Minute {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("feature_stats: updates %d (want %d), lookups %d, values %d, newest %v, %v", applied, updates, lookups, values, time.UnixMilli(newest), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func generate(rng *rand.Rand, cards int, n int, end time.Time) []txn {
	txns := make([]txn, n)
	for i := range txns {
		// Mostly in order over 3 hours, with a few minutes of jitter (late but within lateness).
		ts := end.Add(-3 * time.Hour).Add(time.Duration(i) * 3 * time.Hour / time.Duration(n)).Add(-time.Duration(rng.IntN(300)) * time.Second)
		txns[i] = txn{id: fmt.Sprintf("t-%d", i), card: fmt.Sprintf("c-%d", rng.IntN(cards)), merchant: fmt.Sprintf("m-%d", rng.IntN(12)),
			country: []string{"DE", "FR", "NL"}[rng.IntN(3)], amount: math.Round(rng.ExpFloat64()*4000) / 100, ts: ts.Truncate(time.Millisecond)}
	}
	return txns
}

// rebuilding reports whether the service says a view's online store is being rebuilt.
func (s *service) rebuilding(t *testing.T) bool {
	t.Helper()
	resp, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), "being rebuilt")
}

func (s *service) waitApplied(t *testing.T, cards []string, txns []txn, at time.Time) {
	t.Helper()
	want := map[string]float64{}
	for _, x := range txns {
		if !x.ts.After(at) {
			want[x.card]++
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s.rebuilding(t) {
			time.Sleep(100 * time.Millisecond) // lookups answer 503 until the view is rebuilt
			continue
		}
		got := s.lookup(t, cards, at)["txn_count_7d"]
		ok := true
		for _, c := range cards {
			if got[c] != want[c] {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("features did not catch up: got %v want %v", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestOnlineValuesMatchAnIndependentComputation(t *testing.T) {
	s := start(t)
	rng := rand.New(rand.NewPCG(3, 4))
	now := time.Now().UTC().Truncate(time.Millisecond)
	txns := generate(rng, 15, 1500, now)
	s.produce(t, txns)
	cards := make([]string, 15)
	for i := range cards {
		cards[i] = fmt.Sprintf("c-%d", i)
	}
	s.waitApplied(t, cards, txns, now)

	v, _ := features.LoadViews("")
	cv, _ := v.Get("card_activity")
	defer s.checkStats(t, len(txns))
	for _, at := range []time.Time{now, now.Add(-17 * time.Minute), now.Add(2 * time.Hour)} {
		got := s.lookup(t, cards, at)
		for _, c := range cards {
			want := expected(cv, txns, c, at)
			for name, w := range want {
				g := got[name][c]
				if gf, ok := g.(float64); ok {
					if wf, ok := w.(float64); ok && math.Abs(gf-wf) <= 1e-9*math.Max(1, math.Abs(wf)) {
						continue
					}
				}
				if fmt.Sprint(g) != fmt.Sprint(w) {
					t.Errorf("card %s %s at %s: got %v, want %v", c, name, at.Format(time.TimeOnly), g, w)
				}
			}
		}
		s.checkRowsAgree(t, cards, at, got)
	}
}

// checkRowsAgree asks the native row-shaped endpoint for the same values as the Feast-shaped
// one answered (got: feature -> card -> value).
func (s *service) checkRowsAgree(t *testing.T, cards []string, at time.Time, got map[string]map[string]any) {
	t.Helper()
	entities := make([]map[string]any, len(cards))
	for i, c := range cards {
		entities[i] = map[string]any{"card_id": c}
	}
	var resp struct {
		FeatureNames []string          `json:"feature_names"`
		ViewVersions map[string]string `json:"view_versions"`
		Rows         []struct {
			Entity   map[string]any `json:"entity"`
			Values   []any          `json:"values"`
			Statuses []string       `json:"statuses"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(s.post(t, "/v1/features/online", map[string]any{"feature_service": s.view, "entities": entities, "at": at}), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Rows) != len(cards) || resp.ViewVersions[s.view] == "" {
		t.Fatalf("/v1/features/online: %d rows for %d cards, versions %v", len(resp.Rows), len(cards), resp.ViewVersions)
	}
	for i, c := range cards {
		if resp.Rows[i].Entity["card_id"] != c {
			t.Fatalf("row %d is for %v, want %s", i, resp.Rows[i].Entity, c)
		}
		for j, ref := range resp.FeatureNames {
			name := strings.TrimPrefix(ref, s.view+":")
			if fmt.Sprint(resp.Rows[i].Values[j]) != fmt.Sprint(got[name][c]) {
				t.Errorf("card %s %s: rows say %v, get-online-features %v", c, name, resp.Rows[i].Values[j], got[name][c])
			}
		}
	}
}

// The skew test: for thousands of random (entity, t), the offline point-in-time value equals
// the online lookup at t, bit for bit; and point-in-time values never include a later event.
func TestOfflineEqualsOnlineBitForBit(t *testing.T) {
	s := start(t)
	rng := rand.New(rand.NewPCG(5, 6))
	now := time.Now().UTC().Truncate(time.Millisecond)
	txns := generate(rng, 40, 4000, now)
	s.produce(t, txns)
	cards := make([]string, 40)
	for i := range cards {
		cards[i] = fmt.Sprintf("c-%d", i)
	}
	s.waitApplied(t, cards, txns, now)

	// The online state answers t >= watermark - read_back itself; sample there (older reads
	// are answered from the offline store and would compare it with itself).
	type sample struct {
		card string
		at   time.Time
	}
	var samples []sample
	var rows []map[string]any
	online := map[int]map[string]any{}
	for range 50 {
		at := now.Add(-time.Duration(rng.IntN(4*60)) * time.Second).Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		vals := s.lookup(t, cards, at)
		for _, c := range cards {
			idx := len(samples)
			samples = append(samples, sample{c, at})
			rows = append(rows, map[string]any{"card_id": c, "event_timestamp": at.Format(time.RFC3339Nano)})
			online[idx] = map[string]any{}
			for name, byCard := range vals {
				online[idx][name] = byCard[c]
			}
		}
	}
	out := s.post(t, "/v1/features/historical", map[string]any{"feature_service": s.view, "entity_rows": rows})
	dec := json.NewDecoder(bytes.NewReader(out))
	n := 0
	for dec.More() {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatal(err)
		}
		idx := int(line["row"].(float64))
		for name, want := range online[idx] {
			got := line[s.view+":"+name]
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
				t.Fatalf("row %d (%s at %s) %s: offline %#v, online %#v", idx, samples[idx].card, samples[idx].at, name, got, want)
			}
		}
		n++
	}
	if n != len(samples) {
		t.Fatalf("historical answered %d rows, want %d", n, len(samples))
	}
	t.Logf("%d (entity, t) pairs × %d features equal online and offline", n, len(online[0]))

	// The Parquet export carries the same values.
	b, _ := json.Marshal(map[string]any{"feature_service": s.view, "entity_rows": rows[:200], "format": "parquet"})
	resp, err := http.Post(s.url+"/v1/features/historical", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	file, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.apache.parquet" {
		t.Fatalf("parquet export: %d %s", resp.StatusCode, file)
	}
	pf, err := parquet.OpenFile(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		t.Fatalf("not a parquet file: %v", err)
	}
	pr := parquet.NewGenericReader[map[string]any](pf, pf.Schema())
	defer pr.Close()
	recs := make([]map[string]any, 200)
	for i := range recs {
		recs[i] = map[string]any{}
	}
	got, _ := pr.Read(recs)
	if got != 200 {
		t.Fatalf("parquet holds %d rows, want 200", got)
	}
	for _, rec := range recs[:got] {
		idx := int(rec["row"].(int64))
		if rec["card_id"] != samples[idx].card {
			t.Fatalf("parquet row %d: card %v, want %s", idx, rec["card_id"], samples[idx].card)
		}
		for _, name := range []string{"txn_count_1h", "amount_sum_24h", "distinct_merchants_24h", "last_country"} {
			if fmt.Sprint(rec[name]) != fmt.Sprint(online[idx][name]) {
				t.Fatalf("parquet row %d %s: %v, want %v", idx, name, rec[name], online[idx][name])
			}
		}
	}
}

func TestPointInTimeNeverSeesTheFutureAndRespectsTTL(t *testing.T) {
	s := start(t)
	base := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	txns := []txn{
		{id: "a", card: "c-1", merchant: "m1", country: "DE", amount: 10, ts: base},
		{id: "b", card: "c-1", merchant: "m2", country: "FR", amount: 20, ts: base.Add(time.Minute)},
	}
	s.produce(t, txns)
	deadline := time.Now().Add(30 * time.Second)
	rows := []map[string]any{
		{"card_id": "c-1", "event_timestamp": base.Add(-time.Millisecond).Format(time.RFC3339Nano)},
		{"card_id": "c-1", "event_timestamp": base.Format(time.RFC3339Nano)},
		{"card_id": "c-1", "event_timestamp": base.Add(time.Minute - time.Millisecond).Format(time.RFC3339Nano)},
		{"card_id": "c-1", "event_timestamp": base.Add(time.Minute).Format(time.RFC3339Nano)},
		{"card_id": "c-1", "event_timestamp": base.Add(9 * 24 * time.Hour).Format(time.RFC3339Nano)},
		{"card_id": "c-9", "event_timestamp": base.Format(time.RFC3339Nano)},
	}
	var lines []map[string]any
	for {
		out := s.post(t, "/v1/features/historical", map[string]any{"features": []string{s.view + ":txn_count_1h", s.view + ":last_country", s.view + ":amount_sum_24h"}, "entity_rows": rows})
		lines = nil
		dec := json.NewDecoder(bytes.NewReader(out))
		for dec.More() {
			var l map[string]any
			_ = dec.Decode(&l)
			lines = append(lines, l)
		}
		sort.Slice(lines, func(i, j int) bool { return lines[i]["row"].(float64) < lines[j]["row"].(float64) })
		if len(lines) == 6 && lines[3][s.view+":txn_count_1h"] == 2.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("updates never reached the offline store: %v", lines)
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := []struct {
		count any
		last  any
	}{{0.0, ""}, {1.0, "DE"}, {1.0, "DE"}, {2.0, "FR"}, {0.0, ""}, {0.0, ""}}
	for i, w := range want {
		if lines[i][s.view+":txn_count_1h"] != w.count || lines[i][s.view+":last_country"] != w.last {
			t.Errorf("row %d: count %v last %v, want %v %v", i, lines[i][s.view+":txn_count_1h"], lines[i][s.view+":last_country"], w.count, w.last)
		}
	}
}
