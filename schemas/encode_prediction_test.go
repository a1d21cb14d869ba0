package schemas

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

func predictionSample() *Prediction {
	return &Prediction{RequestID: "r-1/0#shadow", Model: "fraud", Version: 3, Alias: "challenger", Entity: "card \"7\" <é>",
		Features: map[string]any{"amount": 12.5, "tiny": 1e-9, "huge": 3e22, "neg": -0.0, "channel": "ecom", "none": nil,
			"flag": true, "n": 7, "list": []any{1.0, "x"}, "bad\xffutf": "ctl\x01\n\t"},
		Sources:   map[string]string{"amount": "fetched", "channel": "request"},
		Request:   map[string]any{"card_id": "c-7", "nested": map[string]any{"a": 1.0}, "num": json.Number("12.50")},
		Output:    json.RawMessage(`{"score":0.25,"label":0}`),
		Score:     0.25,
		Scores:    map[string]float64{"b": 0.5, "a": 1e-7},
		Shadow:    true,
		TS:        time.Date(2026, 12, 5, 16, 40, 1, 123456000, time.UTC),
		LatencyUS: 345,
	}
}

// TestAppendPredictionJSONMatchesEncodingJSON: the same document as json.Marshal, value for
// value, for full and minimal records.
func TestAppendPredictionJSONMatchesEncodingJSON(t *testing.T) {
	for _, p := range []*Prediction{predictionSample(), {RequestID: "r", TS: time.Unix(0, 0).UTC()}} {
		got, err := AppendPredictionJSON(nil, p)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, got)
		}
		_ = json.Unmarshal(want, &w)
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("documents differ\n got %s\nwant %s", got, want)
		}
	}
}

// TestAppendPredictionJSONRefusesWhatJSONCannotCarry: NaN and ±Inf anywhere are errors.
func TestAppendPredictionJSONRefusesWhatJSONCannotCarry(t *testing.T) {
	for name, mutate := range map[string]func(*Prediction){
		"feature": func(p *Prediction) { p.Features["amount"] = math.NaN() },
		"request": func(p *Prediction) { p.Request["x"] = math.Inf(1) },
		"score":   func(p *Prediction) { p.Score = math.NaN() },
		"scores":  func(p *Prediction) { p.Scores["a"] = math.Inf(-1) },
	} {
		p := predictionSample()
		mutate(p)
		if _, err := AppendPredictionJSON(nil, p); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := json.Marshal(p); err == nil {
			t.Errorf("%s: encoding/json takes it (test is wrong)", name)
		}
	}
}

func BenchmarkAppendPredictionJSON(b *testing.B) {
	p := predictionSample()
	delete(p.Features, "list")
	delete(p.Request, "nested")
	var buf []byte
	for b.Loop() {
		buf, _ = AppendPredictionJSON(buf[:0], p)
	}
}

func BenchmarkMarshalPrediction(b *testing.B) {
	p := predictionSample()
	delete(p.Features, "list")
	delete(p.Request, "nested")
	for b.Loop() {
		_, _ = json.Marshal(p)
	}
}
