package model

import (
	"encoding/json"
	"math"
	"testing"
)

// TestOutputJSONIsEncodingJSON: the hand-written encoder gives encoding/json's bytes.
func TestOutputJSONIsEncodingJSON(t *testing.T) {
	one, zero := 1, 0
	type plain Output // no MarshalJSON: what encoding/json makes of the tags
	for _, o := range []Output{{}, {Score: 0.25, Label: &one}, {Score: 1e-9, Label: &zero, Scores: []float64{1e-9, 0.5, 3e21}}, {Score: -0.0}} {
		got, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(plain(o))
		if string(got) != string(want) {
			t.Errorf("%+v: %s, encoding/json %s", o, got, want)
		}
	}
	if _, err := json.Marshal(Output{Score: math.NaN()}); err == nil {
		t.Error("NaN score encoded")
	}
	if _, err := json.Marshal(Output{Scores: []float64{math.Inf(1)}}); err == nil {
		t.Error("infinite score encoded")
	}
}
