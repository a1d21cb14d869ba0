package schemas_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/flywheel-ml/flywheel/schemas"
)

func TestTopics(t *testing.T) {
	if schemas.RawTopic("transactions") != "raw.transactions" || schemas.EventsTopic("x") != "events.x" || schemas.DLQTopic("x") != "dlq.x" {
		t.Fatal("topic names drifted from ARCHITECTURE.md")
	}
	for topic, want := range map[string]string{"raw.a": "a", "events.b.c": "b.c", "dlq.d": "d", "predictions": "", "raw.": ""} {
		got, ok := schemas.StreamOf(topic)
		if got != want || ok != (want != "") {
			t.Errorf("StreamOf(%q) = %q, %v", topic, got, ok)
		}
	}
}

func roundTrip[T any](t *testing.T, v T, wantKeys ...string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var back T
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(v, back) {
		t.Fatalf("round trip changed the value:\n%+v\n%+v", v, back)
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(b, &keys)
	for _, k := range wantKeys {
		if _, ok := keys[k]; !ok {
			t.Errorf("%T JSON lacks %q: %s", v, k, b)
		}
	}
}

func TestEnvelopeRoundTrips(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC)
	roundTrip(t, schemas.Event{Stream: "transactions", EventID: "t-1", EventTime: ts, Entity: "c-42", SchemaVersion: 1,
		IngestedAt: ts, Data: json.RawMessage(`{"amount":12.5}`)},
		"stream", "event_id", "event_time", "entity", "schema_version", "ingested_at", "data")
	roundTrip(t, schemas.Prediction{RequestID: "r", Model: "fraud", Version: 3, Entity: "c", Features: map[string]any{"a": 1.5},
		Output: json.RawMessage(`0.9`), TS: ts, LatencyUS: 250},
		"request_id", "model", "version", "entity", "features", "output", "ts", "latency_us")
	roundTrip(t, schemas.DriftEvent{ID: "d", Model: "fraud", Version: 3, Kind: schemas.DriftData, Feature: "amount", Method: "psi",
		Score: 0.3, Threshold: 0.2, Window: schemas.DriftWindow{Start: ts, End: ts, N: 10}, DetectedAt: ts},
		"id", "model", "version", "kind", "feature", "method", "score", "threshold", "window", "detected_at")
	roundTrip(t, schemas.RegistryEvent{ID: "e", Type: schemas.RegistryAliasMoved, Model: "fraud", Version: 2, Alias: "champion", At: ts},
		"id", "type", "model", "version", "alias", "at")
}

func TestDLQKeepsOriginalBytesExactly(t *testing.T) {
	cases := [][]byte{
		[]byte(`{"amount": -1,  "x":[1,2]}`),
		[]byte("{\"bad\": \"\xff\xfe\"}"),
		[]byte(`{"truncated":`),
		{},
	}
	for _, original := range cases {
		rec := schemas.NewDLQRecord("transactions", []string{"/amount: must be >= 0"}, time.Now(), original)
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("%q: %v", original, err)
		}
		var back schemas.DLQRecord
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, err := back.OriginalBytes()
		if err != nil || !bytes.Equal(got, original) {
			t.Fatalf("payload %q came back as %q (%v), encoding %s", original, got, err, back.PayloadEncoding)
		}
	}
}

func TestStreamSchemasCompile(t *testing.T) {
	streams := schemas.Streams()
	names, err := fs.Glob(streams, "*.json")
	if err != nil || len(names) < 2 {
		t.Fatalf("stream schemas missing: %v %v", names, err)
	}
	for _, name := range names {
		raw, _ := fs.ReadFile(streams, name)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource(name, doc); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Compile(name); err != nil {
			t.Fatalf("%s does not compile: %v", name, err)
		}
	}
	raw, _ := fs.ReadFile(streams, "transactions.json")
	var s struct {
		Meta struct {
			Entity    string `json:"entity"`
			EventTime string `json:"event_time"`
		} `json:"x-flywheel"`
	}
	_ = json.Unmarshal(raw, &s)
	if s.Meta.Entity != "card_id" || s.Meta.EventTime != "event_time" {
		t.Fatalf("transactions metadata: %+v", s.Meta)
	}
}

func TestMigrationsAreOrdered(t *testing.T) {
	names, _ := fs.Glob(schemas.ClickHouseMigrations(), "*.sql")
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}
	if !sort.StringsAreSorted(names) {
		t.Fatalf("migration names must sort in apply order: %v", names)
	}
	for _, n := range names {
		if len(n) < 6 || !strings.Contains("0123456789", n[:1]) || n[4] != '_' {
			t.Errorf("%s: want NNNN_description.sql", n)
		}
	}
	if _, err := fs.ReadFile(schemas.FeatureViews(), "card_activity.yaml"); err != nil {
		t.Fatal(err)
	}
}
