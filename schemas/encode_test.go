package schemas_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/schemas"
)

func TestAppendEventJSONMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	for _, id := range []string{"t-1", "quote\" back\\slash", "ctl\x01\n\t", "ünï©ødé", "bad\xffutf8", ""} {
		e := schemas.Event{Stream: "transactions", EventID: id, EventTime: ts, Entity: "c-" + id, SchemaVersion: 3,
			IngestedAt: ts.Add(time.Second), Data: json.RawMessage(`{"a": [1, 2],  "b":"x"}`)}
		fast := schemas.AppendEventJSON(nil, &e)
		if !json.Valid(fast) {
			t.Fatalf("invalid JSON: %s", fast)
		}
		var got, want map[string]any
		std, _ := json.Marshal(e)
		_ = json.Unmarshal(fast, &got)
		_ = json.Unmarshal(std, &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("id %q:\nfast %s\nstd  %s", id, fast, std)
		}
	}
}

func BenchmarkAppendEventJSON(b *testing.B) {
	e := schemas.Event{Stream: "transactions", EventID: "t-1", EventTime: time.Now(), Entity: "c-42", SchemaVersion: 1,
		IngestedAt: time.Now(), Data: json.RawMessage(`{"transaction_id":"t-1","card_id":"c-42","amount":12.5,"currency":"EUR","merchant_id":"m-7","merchant_category":"grocery","country":"DE","channel":"pos","event_time":"2026-11-22T10:00:00Z"}`)}
	b.Run("append", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = schemas.AppendEventJSON(buf[:0], &e)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(e)
		}
	})
}
