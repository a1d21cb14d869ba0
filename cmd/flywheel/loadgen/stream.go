package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
)

// StreamConfig measures the features stream: N envelopes are produced to events.<stream>
// (as ingest would) over Cards cards and the last hour, and the run waits until the
// features service has applied them all, to both stores.
type StreamConfig struct {
	Kafka       kafkax.Config
	FeaturesURL string
	Stream      string
	View        string
	N           int
	Cards       int
}

// Stream runs it and returns events per second.
func Stream(ctx context.Context, cfg StreamConfig) (float64, time.Duration, error) {
	before, err := appliedUpdates(ctx, cfg.FeaturesURL, cfg.View)
	if err != nil {
		return 0, 0, err
	}
	p := kafkax.NewProducer(cfg.Kafka)
	defer p.Close()
	now := time.Now().UTC()
	run := strconv.FormatInt(now.UnixNano(), 36)
	start := time.Now()
	const chunk = 5000
	for off := 0; off < cfg.N; off += chunk {
		msgs := make([]kafkax.Message, 0, chunk)
		for i := off; i < min(off+chunk, cfg.N); i++ {
			card := "c-" + strconv.Itoa(i*7919%cfg.Cards)
			ts := now.Add(-time.Hour + time.Duration(i)*time.Hour/time.Duration(cfg.N))
			data := fmt.Appendf(nil, `{"transaction_id":"s-%s-%d","card_id":%q,"amount":%d.5,"currency":"EUR","merchant_id":"m-%d","merchant_category":"grocery","country":"DE","channel":"pos","event_time":%q}`,
				run, i, card, i%300, i%97, ts.Format(time.RFC3339Nano))
			env := schemas.AppendEventJSON(nil, &schemas.Event{Stream: cfg.Stream, EventID: fmt.Sprintf("s-%s-%d", run, i), EventTime: ts,
				Entity: card, SchemaVersion: 1, IngestedAt: now, Data: data})
			msgs = append(msgs, kafkax.Message{Topic: schemas.EventsTopic(cfg.Stream), Key: []byte(card), Value: env})
		}
		if err := p.Produce(ctx, msgs...); err != nil {
			return 0, 0, err
		}
	}
	for {
		n, err := appliedUpdates(ctx, cfg.FeaturesURL, cfg.View)
		if err != nil {
			return 0, 0, err
		}
		if n-before >= float64(cfg.N) {
			elapsed := time.Since(start)
			return float64(cfg.N) / elapsed.Seconds(), elapsed, nil
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func appliedUpdates(ctx context.Context, url, view string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	prefix := `flywheel_features_updates_total{view="` + view + `"} `
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, nil
}
