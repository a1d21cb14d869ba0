// Package rawconsumer feeds raw.<stream> messages to the pipeline. A message's value is one
// JSON object or an array of them; a value that is not even JSON is dead-lettered whole.
package rawconsumer

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/pipeline"
	"github.com/flywheel-ml/flywheel/services/ingest/validate"
)

// Ingester is the pipeline as the consumer uses it.
type Ingester interface {
	Ingest(ctx context.Context, s *catalog.Stream, transport string, records []pipeline.Record) (pipeline.Result, error)
}

// Handler returns the kafkax handler for raw topics. It returns only after every output of
// the batch is acknowledged, so the consumer commits exactly what is durable.
func Handler(cat *catalog.Catalog, in Ingester, maxItems int) func(ctx context.Context, batch []kafka.Message) error {
	return func(ctx context.Context, batch []kafka.Message) error {
		byStream := map[string][]pipeline.Record{}
		var order []string
		for _, m := range batch {
			name, _ := schemas.StreamOf(m.Topic)
			if _, ok := cat.Get(name); !ok {
				return fmt.Errorf("topic %s belongs to no stream in the catalog", m.Topic)
			}
			if _, ok := byStream[name]; !ok {
				order = append(order, name)
			}
			src := schemas.DLQSource{Transport: "kafka", Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
			items, err := validate.Split(m.Value, false, maxItems)
			if err != nil {
				byStream[name] = append(byStream[name], pipeline.Record{Raw: m.Value, Key: m.Key, Source: src, Err: err})
				continue
			}
			for _, it := range items {
				s := src
				if len(items) > 1 || (len(m.Value) > 0 && m.Value[0] == '[') {
					idx := it.Index
					s.Index = &idx
				}
				byStream[name] = append(byStream[name], pipeline.Record{Raw: it.Raw, Key: m.Key, Source: s})
			}
		}
		for _, name := range order {
			s, _ := cat.Get(name)
			if _, err := in.Ingest(ctx, s, "kafka", byStream[name]); err != nil {
				return err
			}
		}
		return nil
	}
}
