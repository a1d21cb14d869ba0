// Package dispatch delivers decided drift events: to the drift topic (the trainer retrains
// on it, idempotent by event id) and to webhooks (Slack-compatible or generic JSON), with
// retries and backoff. It works from the drift_events table, marking each event published and
// alerted as that succeeds, so a restart resumes what was not done and repeats nothing done.
// (A crash between a successful delivery and its mark repeats that one delivery; the id lets
// receivers drop it.)
package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/monitor/store"
)

// Events is the record of decided events.
type Events interface {
	Pending(ctx context.Context, since time.Time) ([]store.Pending, error)
	Mark(ctx context.Context, ev schemas.DriftEvent, published, alerted bool) error
}

// Producer writes to Kafka.
type Producer interface {
	Produce(ctx context.Context, msgs ...kafkax.Message) error
}

// Webhook is one alert receiver.
type Webhook struct {
	URL   string
	Slack bool // {"text": …}; otherwise the drift event itself
}

// ParseWebhooks reads "url[,url…]"; a URL prefixed "slack+" (or on hooks.slack.com) gets
// Slack's {"text": …} body.
func ParseWebhooks(spec string) []Webhook {
	var out []Webhook
	for _, s := range strings.Split(spec, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		w := Webhook{URL: s}
		if rest, ok := strings.CutPrefix(s, "slack+"); ok {
			w.URL, w.Slack = rest, true
		} else if strings.Contains(s, "hooks.slack.com") {
			w.Slack = true
		}
		out = append(out, w)
	}
	return out
}

// Dispatcher delivers events.
type Dispatcher struct {
	events   Events
	producer Producer
	hooks    []Webhook
	client   *http.Client
	log      *zap.Logger
	backoff  retry.Backoff
	attempts int

	published, alerts, failures prometheus.Counter
}

// New returns a dispatcher.
func New(events Events, producer Producer, hooks []Webhook, log *zap.Logger, reg prometheus.Registerer) *Dispatcher {
	d := &Dispatcher{events: events, producer: producer, hooks: hooks, client: &http.Client{Timeout: 10 * time.Second}, log: log,
		backoff: retry.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second}, attempts: 5,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "monitor_drift_events_published_total", Help: "Drift events published to the drift topic."}),
		alerts:    prometheus.NewCounter(prometheus.CounterOpts{Name: "monitor_alerts_sent_total", Help: "Webhook alerts delivered."}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "monitor_alert_failures_total", Help: "Webhook calls that failed (retried)."}),
	}
	if reg != nil {
		reg.MustRegister(d.published, d.alerts, d.failures)
	}
	return d
}

// Run delivers pending events every interval until ctx ends.
func (d *Dispatcher) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := d.Once(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("deliver drift events; retrying", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Once delivers what is pending now.
func (d *Dispatcher) Once(ctx context.Context) error {
	pending, err := d.events.Pending(ctx, time.Now().Add(-7*24*time.Hour))
	if err != nil {
		return err
	}
	for _, p := range pending {
		ev := p.Event
		if !p.Published {
			b, _ := json.Marshal(ev)
			if err := d.producer.Produce(ctx, kafkax.Message{Topic: schemas.TopicDrift, Key: []byte(ev.Model), Value: b}); err != nil {
				return fmt.Errorf("publish drift event %s: %w", ev.ID, err)
			}
			d.published.Inc()
			p.Published = true
			if err := d.events.Mark(ctx, ev, true, p.Alerted); err != nil {
				return err
			}
			d.log.Info("drift event published", zap.String("id", ev.ID), zap.String("model", ev.Model), zap.Int("version", ev.Version),
				zap.String("kind", string(ev.Kind)), zap.String("feature", ev.Feature), zap.Float64("score", ev.Score), zap.Float64("threshold", ev.Threshold))
		}
		if !p.Alerted {
			for _, h := range d.hooks {
				if err := d.alert(ctx, h, ev); err != nil {
					d.log.Error("webhook alert not delivered after retries; it is retried on the next pass", zap.String("url", redact(h.URL)),
						zap.String("event", ev.ID), zap.Error(err))
					return nil
				}
			}
			if err := d.events.Mark(ctx, ev, true, true); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Dispatcher) alert(ctx context.Context, h Webhook, ev schemas.DriftEvent) error {
	var body []byte
	if h.Slack {
		body, _ = json.Marshal(map[string]string{"text": Text(ev)})
	} else {
		body, _ = json.Marshal(map[string]any{"type": "flywheel.drift", "text": Text(ev), "event": ev})
	}
	attempt := 0
	return retry.Do(ctx, d.backoff, func(ctx context.Context) error {
		attempt++
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
		if err != nil {
			return retry.Permanent(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", ev.ID)
		resp, err := d.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			if resp.StatusCode < 300 {
				d.alerts.Inc()
				return nil
			}
			err = fmt.Errorf("webhook answered %d", resp.StatusCode)
			if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 429 {
				err = retry.Permanent(err)
			}
		}
		d.failures.Inc()
		if attempt >= d.attempts {
			return retry.Permanent(err)
		}
		return err
	}, nil)
}

// Text is the alert's human-readable line.
func Text(ev schemas.DriftEvent) string {
	var parts []string
	for _, f := range ev.Features {
		parts = append(parts, fmt.Sprintf("%s (%s %.4g > %.4g)", f.Feature, f.Method, f.Score, f.Threshold))
	}
	if len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%s (%s %.4g vs %.4g)", ev.Feature, ev.Method, ev.Score, ev.Threshold))
	}
	if ev.Kind == "concept" {
		parts = []string{fmt.Sprintf("window AUC %.4f below the floor %.4f its holdout allows", ev.Score, ev.Threshold)}
	}
	return fmt.Sprintf("Flywheel: %s drift in %s version %d over %d predictions (%s – %s): %s [event %s]",
		ev.Kind, ev.Model, ev.Version, ev.Window.N, ev.Window.Start.Format(time.RFC3339), ev.Window.End.Format(time.RFC3339),
		strings.Join(parts, "; "), ev.ID)
}

// redact hides a webhook URL's secret path (Slack's are credentials).
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.Index(u[i+3:], "/"); j >= 0 {
			return u[:i+3+j] + "/…"
		}
	}
	return u
}
