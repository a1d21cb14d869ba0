package predict_test

import (
	"context"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/serving/model"
	"github.com/flywheel-ml/flywheel/services/serving/predict"
	"github.com/flywheel-ml/flywheel/services/serving/routing"
)

type discard struct{}

func (discard) Publish(*schemas.Prediction) {}

// BenchmarkPredictOne is the service's own work for one instance (no Redis, no HTTP).
func BenchmarkPredictOne(b *testing.B) {
	table := routing.NewTable(nil)
	table.Set("fraud", routing.Champion, served(&testing.T{}, 1, 0))
	svc := predict.New(table, &store{}, discard{}, time.Now, nil)
	req := &predict.Request{Model: "fraud", RequestID: "r", Instances: []model.Instance{
		{Fields: map[string]any{"card_id": "c1", "amount": 100.0, "channel": "web", "merchant_category": "grocery", "country": "DE"}}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Predict(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
