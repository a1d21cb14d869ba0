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

// StreamReport is what a stream run measured: the whole run (producing while the service
// applies, on the same cores), and the drain after the last event was produced, when the
// service works through the backlog with no producer competing.
type StreamReport struct {
	N       int
	Elapsed time.Duration
	// Drained events and the time they took after production ended.
	Drained      int
	DrainElapsed time.Duration
}

// Rate is events per second over the whole run.
func (r StreamReport) Rate() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// DrainRate is events per second after production ended (0 when nothing was left).
func (r StreamReport) DrainRate() float64 {
	if r.Drained == 0 || r.DrainElapsed <= 0 {
		return 0
	}
	return float64(r.Drained) / r.DrainElapsed.Seconds()
}

// Stream runs it.
func Stream(ctx context.Context, cfg StreamConfig) (StreamReport, error) {
	rep := StreamReport{N: cfg.N}
	before, err := appliedUpdates(ctx, cfg.FeaturesURL, cfg.View)
	if err != nil {
		return rep, err
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
			return rep, err
		}
	}
	produced := time.Now()
	atProduced, err := appliedUpdates(ctx, cfg.FeaturesURL, cfg.View)
	if err != nil {
		return rep, err
	}
	for {
		n, err := appliedUpdates(ctx, cfg.FeaturesURL, cfg.View)
		if err != nil {
			return rep, err
		}
		if n-before >= float64(cfg.N) {
			rep.Elapsed = time.Since(start)
			rep.Drained, rep.DrainElapsed = int(n-atProduced), time.Since(produced)
			return rep, nil
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
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
