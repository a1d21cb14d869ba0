package dataset_test

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/offline"
	"github.com/flywheel-ml/flywheel/services/trainer/dataset"
)

func TestSnapshotRoundTripsAndIsContentAddressed(t *testing.T) {
	spec := fraudSpec(t)
	src := fakeSource{view: cardActivity(t), value: func(r offline.Row, i int) agg.Result {
		if r.Index%3 == 0 && i == 2 {
			return agg.Result{Status: agg.NotFound}
		}
		return agg.Result{Status: agg.Present, Value: float64(r.Index) + float64(i)/10, EventTime: r.TS}
	}}
	ex := examples(1500)
	delete(ex[4].Fields, "amount") // a missing request value survives as missing
	b, err := dataset.Build(context.Background(), spec, ex, src)
	if err != nil {
		t.Fatal(err)
	}
	data, sum, err := dataset.WriteSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	data2, sum2, err := dataset.WriteSnapshot(b)
	if err != nil || sum2 != sum || string(data2) != string(data) {
		t.Fatalf("the same training set must give the same bytes: %s vs %s (%v)", sum, sum2, err)
	}
	back, err := dataset.ReadSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Columns, b.Columns) || !reflect.DeepEqual(back.ViewVersions, b.ViewVersions) ||
		!reflect.DeepEqual(back.EventIDs, b.EventIDs) || !reflect.DeepEqual(back.TimesMS, b.TimesMS) ||
		!reflect.DeepEqual(back.Frame.Label, b.Frame.Label) || !reflect.DeepEqual(back.Frame.Names, b.Frame.Names) {
		t.Fatal("snapshot did not round-trip its identity columns and definitions")
	}
	for j := range b.Frame.Cols {
		for i, v := range b.Frame.Cols[j] {
			w := back.Frame.Cols[j][i]
			if v != w && !(math.IsNaN(v) && math.IsNaN(w)) {
				t.Fatalf("column %s row %d: %v came back as %v", b.Frame.Names[j], i, v, w)
			}
		}
	}
	if !math.IsNaN(back.Frame.Cols[0][4]) {
		t.Fatal("a missing value must stay missing")
	}
	for _, bad := range [][]byte{nil, data[:len(data)/2], []byte("PAR1 not parquet")} {
		if _, err := dataset.ReadSnapshot(bad); err == nil {
			t.Fatalf("a broken snapshot (%d bytes) must be an error", len(bad))
		}
	}
}
