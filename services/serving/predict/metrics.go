package predict

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-ml/flywheel/services/serving/model"
)

type metrics struct {
	predictions   *prometheus.CounterVec
	inputs        *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	shadowSkipped *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		predictions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "serving_predictions_total",
			Help: "Predictions made, by model, version and alias (shadow: scored in the shadow)."}, []string{"model", "version", "alias"}),
		inputs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "serving_inputs_total",
			Help: "Model inputs by where they came from: fetched, defaulted, supplied, request, missing."}, []string{"model", "feature", "source"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "serving_predict_duration_seconds",
			Help:    "Time to answer a prediction request inside the service (lookup, assembly, scoring).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"model"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "serving_feature_store_errors_total",
			Help: "Requests whose online lookup failed: refused (503) or answered with defaults."}, []string{"model", "outcome"}),
		shadowSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "serving_shadow_skipped_total",
			Help: "Shadow scorings skipped because too many were in flight."}, []string{"model"}),
	}
	if reg != nil {
		reg.MustRegister(m.predictions, m.inputs, m.latency, m.storeErrors, m.shadowSkipped)
	}
	return m
}

func (m *metrics) count(name string, sv *model.Served, alias string, used *model.Used) {
	m.predictions.WithLabelValues(name, strconv.Itoa(sv.Version), alias).Inc()
	for f, src := range used.Sources {
		if src != model.Fetched && src != model.Request {
			m.inputs.WithLabelValues(name, f, src).Inc()
		}
	}
}
