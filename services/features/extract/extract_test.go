package extract_test

import (
	"reflect"
	"testing"

	"github.com/go-json-experiment/json"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/extract"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

const def = `
name: v
entities: [card_id]
source: transactions
ttl: 8d
features:
  - {name: n, agg: count, window: 1h, default: 0}
  - {name: ecom, agg: count, window: 1h, filter: {field: channel, op: eq, value: ecom}, default: 0}
  - {name: big, agg: count, window: 1h, filter: {field: amount, op: gt, value: 100}, default: 0}
  - {name: s, agg: sum, field: amount, window: 1h, default: 0}
  - {name: c, agg: last, field: country, default: ""}
  - {name: d, agg: count_distinct, field: merchant_id, window: 1h, default: 0}
`

func TestExtractMatchesDecodingTheWholeObject(t *testing.T) {
	v, err := views.Parse([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	x := extract.New(v)
	for _, data := range []string{
		`{"card_id":"c-1","amount":120.5,"channel":"ecom","country":"DE","merchant_id":"m\u00e9-1","extra":{"a":[1,2]}}`,
		`{"card_id":42,"amount":"7","channel":"pos","country":"FR","merchant_id":7}`,
		`{"amount":1,"card_id":"c-2","nested":[{"card_id":"x"}],"country":null}`,
		`{"card_id":"c-3","amount":{"v":1},"merchant_id":true}`,
	} {
		var obj map[string]any
		if err := json.Unmarshal([]byte(data), &obj); err != nil {
			t.Fatal(err)
		}
		wantKey, wantVals, wantErr := x.FromMap(obj)
		key, vals, err := x.Extract([]byte(data))
		if key != wantKey || (err == nil) != (wantErr == nil) || !reflect.DeepEqual(vals, wantVals) {
			t.Errorf("%s:\nscan %q %v %v\nmap  %q %v %v", data, key, vals, err, wantKey, wantVals, wantErr)
		}
	}
	if _, _, err := x.Extract([]byte(`{"amount":1}`)); err == nil {
		t.Error("an event without the join key must fail")
	}
	if _, _, err := x.Extract([]byte(`[1]`)); err == nil {
		t.Error("a non-object must fail")
	}
	_, vals, _ := x.Extract([]byte(`{"card_id":"c","amount":150,"channel":"ecom"}`))
	if vals[1].Kind != agg.Num || vals[2].Kind != agg.Num || vals[3].Num != 150 {
		t.Errorf("filters or values wrong: %+v", vals)
	}
}

func FuzzExtract(f *testing.F) {
	v, err := views.Parse([]byte(def))
	if err != nil {
		f.Fatal(err)
	}
	x := extract.New(v)
	f.Add([]byte(`{"card_id":"c-1","amount":120.5,"channel":"ecom","country":"DE","merchant_id":"m-1"}`))
	f.Add([]byte(`{"card_id":1,"amount":{"x":[1]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var obj map[string]any
		if json.Unmarshal(data, &obj) != nil {
			_, _, _ = x.Extract(data) // must not panic
			return
		}
		wantKey, wantVals, wantErr := x.FromMap(obj)
		key, vals, err := x.Extract(data)
		if key != wantKey || (err == nil) != (wantErr == nil) || !reflect.DeepEqual(vals, wantVals) {
			t.Fatalf("%q: scan %q %v %v, map %q %v %v", data, key, vals, err, wantKey, wantVals, wantErr)
		}
	})
}
