// Package gauges exports the monitor's latest window results as Prometheus gauges, for
// alerting rules that live in Prometheus rather than in the monitor: it wraps the results
// sink and records what passes through it.
package gauges

import (
	"context"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/monitor/evaluate"
)

// Sink is evaluate.Sink with the latest results also exported.
type Sink struct {
	evaluate.Sink
	score, threshold, drifted *prometheus.GaugeVec
	windowN, windowEnd        *prometheus.GaugeVec
	performance               *prometheus.GaugeVec
	events                    *prometheus.CounterVec
}

// Wrap exports what next stores, once stored, on reg.
func Wrap(next evaluate.Sink, reg prometheus.Registerer) *Sink {
	labels := []string{"model", "version", "kind", "feature", "method"}
	s := &Sink{Sink: next,
		score: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "monitor_drift_score",
			Help: "The drift statistic of the latest evaluated window (feature empty: the window's verdict, the number of drifted features)."}, labels),
		threshold: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "monitor_drift_threshold",
			Help: "The calibrated (or fixed) alarm threshold the latest window's statistic was compared with."}, labels),
		drifted: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "monitor_drift_drifted",
			Help: "1 when the latest window drifted for this feature and method, after Benjamini–Hochberg."}, labels),
		windowN: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "monitor_window_predictions",
			Help: "Predictions in the latest evaluated window."}, []string{"model", "version"}),
		windowEnd: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "monitor_window_end_seconds",
			Help: "End of the latest evaluated window, Unix seconds (how far behind the monitor is)."}, []string{"model", "version"}),
		performance: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "monitor_model_performance",
			Help: "Quality of the latest window with labels (auc, logloss, precision, recall, rmse, n …)."}, []string{"model", "version", "metric"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "monitor_drift_events_total",
			Help: "Drift events decided (before dispatch)."}, []string{"model", "kind"}),
	}
	if reg != nil {
		reg.MustRegister(s.score, s.threshold, s.drifted, s.windowN, s.windowEnd, s.performance, s.events)
	}
	return s
}

// WriteScores stores the scores, then exports them.
func (s *Sink) WriteScores(ctx context.Context, w evaluate.Window, scores []evaluate.Score) error {
	if err := s.Sink.WriteScores(ctx, w, scores); err != nil {
		return err
	}
	v := strconv.Itoa(w.Version)
	for _, sc := range scores {
		l := prometheus.Labels{"model": w.Model, "version": v, "kind": sc.Kind, "feature": sc.Feature, "method": sc.Method}
		s.score.With(l).Set(sc.Score)
		s.threshold.With(l).Set(sc.Threshold)
		d := 0.0
		if sc.Drifted {
			d = 1
		}
		s.drifted.With(l).Set(d)
	}
	if len(scores) > 0 && scores[0].Kind != evaluate.Concept {
		s.windowN.WithLabelValues(w.Model, v).Set(float64(w.N))
		s.windowEnd.WithLabelValues(w.Model, v).Set(float64(w.End.Unix()))
	}
	return nil
}

// WritePerformance stores the metrics, then exports them.
func (s *Sink) WritePerformance(ctx context.Context, w evaluate.Window, m map[string]float64) error {
	if err := s.Sink.WritePerformance(ctx, w, m); err != nil {
		return err
	}
	for k, x := range m {
		s.performance.WithLabelValues(w.Model, strconv.Itoa(w.Version), k).Set(x)
	}
	return nil
}

// RecordEvent stores the event, then counts it.
func (s *Sink) RecordEvent(ctx context.Context, ev schemas.DriftEvent) error {
	if err := s.Sink.RecordEvent(ctx, ev); err != nil {
		return err
	}
	s.events.WithLabelValues(ev.Model, string(ev.Kind)).Inc()
	return nil
}

var _ evaluate.Sink = (*Sink)(nil)
