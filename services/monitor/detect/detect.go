// Package detect scores a window of one model version against its reference profile with
// the drift statistics of ml/drift: every input feature and the predictions, each against a
// threshold calibrated on the reference for that window size, and a verdict per feature after
// Benjamini–Hochberg across the model's features (so a 20-feature model does not raise 20
// times the alarms of one). Calibrations are kept per model version.
package detect

import (
	"fmt"
	"math"
	"sync"

	"github.com/flywheel-ml/flywheel/ml/drift"
	"github.com/flywheel-ml/flywheel/services/monitor/evaluate"
	"github.com/flywheel-ml/flywheel/services/monitor/reference"
)

// Options choose the methods and the false-alarm rate.
type Options struct {
	Alpha float64 // per-window false-alarm rate (the FDR of Benjamini–Hochberg across features)
	Seed  uint64
	// Numeric defaults to drift.MethodPSI: binned against the profile's quantile bins (fit on
	// every training row), so its null is calibrated with cheap multinomial draws at any window
	// size. KS and Wasserstein need the raw sample and a resampling per window size that costs
	// seconds per feature for windows of 10,000 and more; choose them per deployment.
	Numeric drift.Method
	// Categorical defaults to drift.MethodLInf, the largest change of one category's share:
	// an effect size a floor can bound (chi-square grows with the window).
	Categorical drift.Method
	Predictions drift.Method // default drift.MethodPSI (the profile keeps the predictions' bins only)
	Floors      map[drift.Method]float64
}

func (o Options) withDefaults() Options {
	if o.Alpha == 0 {
		o.Alpha = drift.DefaultAlpha
	}
	if o.Numeric == "" {
		o.Numeric = drift.MethodPSI
	}
	if o.Categorical == "" {
		o.Categorical = drift.MethodLInf
	}
	if o.Predictions == "" {
		o.Predictions = drift.MethodPSI
	}
	if o.Floors == nil {
		o.Floors = DefaultFloors()
	}
	return o
}

// DefaultFloors are the effect sizes below which nothing counts as drift, whatever the window
// size: a PSI of 0.02 (a 0.25σ mean shift is about 0.06) and a category share moving by 2
// points. Without them, windows much larger than the reference (a model trained on 2,000 rows
// watched in windows of 12,000) alarm on the reference's own sampling noise: the threshold is
// calibrated for the average reference, and one fixed reference can sit above it for good.
func DefaultFloors() map[drift.Method]float64 {
	return map[drift.Method]float64{drift.MethodPSI: 0.02, drift.MethodLInf: 0.02, drift.MethodWasserstein: 0.05, drift.MethodJensenShannon: 0.02}
}

// Detector implements evaluate.Detector.
type Detector struct {
	opt         Options
	mu          sync.Mutex
	calibrators map[*reference.Reference]*drift.Calibrator
}

// New returns a detector.
func New(opt Options) *Detector {
	return &Detector{opt: opt.withDefaults(), calibrators: map[*reference.Reference]*drift.Calibrator{}}
}

func (d *Detector) calibrator(ref *reference.Reference) (*drift.Calibrator, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.calibrators[ref]; ok {
		return c, nil
	}
	refs, err := drift.References(ref.Artifact.Profile)
	if err != nil {
		return nil, err
	}
	c, err := drift.NewCalibrator(refs, drift.CalibrationOptions{Alpha: d.opt.Alpha, Seed: d.opt.Seed, Floors: d.opt.Floors,
		Resamples: drift.ResamplesFor(len(refs), d.opt.Alpha)})
	if err != nil {
		return nil, err
	}
	d.calibrators[ref] = c
	return c, nil
}

// Detect scores the window. A feature that cannot be scored (no values in the window) is
// left out; an error scoring one is reported as a row with method "error".
func (d *Detector) Detect(ref *reference.Reference, rows [][]float64, predictions []float64) []evaluate.Score {
	c, err := d.calibrator(ref)
	if err != nil {
		return []evaluate.Score{{Kind: evaluate.Data, Method: "error", PValue: math.NaN(), Feature: fmt.Sprint(err)}}
	}
	var out []evaluate.Score
	var pvalues []float64
	var index []int
	col := make([]float64, len(rows))
	for j, f := range ref.Artifact.Signature {
		m := d.opt.Numeric
		if f.Kind == "categorical" {
			m = d.opt.Categorical
		}
		for i, row := range rows {
			col[i] = row[j]
		}
		res, err := c.Test(f.Name, m, col)
		if err != nil {
			continue // e.g. every value missing in the window
		}
		out = append(out, evaluate.Score{Kind: evaluate.Data, Feature: f.Name, Method: string(m), Score: res.Statistic,
			Threshold: res.Threshold, PValue: res.PValue})
		pvalues = append(pvalues, res.PValue)
		index = append(index, len(out)-1)
	}
	for k, rejected := range drift.BenjaminiHochberg(pvalues, d.opt.Alpha) {
		out[index[k]].Drifted = rejected
	}
	if res, err := c.Test("prediction", d.opt.Predictions, predictions); err == nil {
		out = append(out, evaluate.Score{Kind: evaluate.Prediction, Feature: "prediction", Method: string(d.opt.Predictions),
			Score: res.Statistic, Threshold: res.Threshold, PValue: res.PValue, Drifted: res.Drift})
	}
	return out
}
