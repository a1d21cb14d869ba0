package main

import (
	"math"
	"slices"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/drift"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

// monitorConfig is the monitor's configuration as it ships: services/monitor/settings.go
// (ALPHA 0.01, PERSIST_K 2 of PERSIST_N 3, MIN_WINDOW 500), the detector monitor.go builds
// (detect.Options{Alpha, Seed: 1}) and detect's defaults (PSI for numeric features and the
// predictions, L∞ for categorical ones, detect.DefaultFloors).
type monitorConfig struct {
	Alpha       float64                  `json:"alpha"`
	Seed        uint64                   `json:"seed"`
	Numeric     drift.Method             `json:"numeric"`
	Categorical drift.Method             `json:"categorical"`
	Predictions drift.Method             `json:"predictions"`
	Floors      map[drift.Method]float64 `json:"floors"`
	Resamples   int                      `json:"resamples"`
	PersistK    int                      `json:"persist_k"`
	PersistN    int                      `json:"persist_n"`
	MinWindow   int                      `json:"min_window"`
}

func defaultMonitor() monitorConfig {
	const alpha = 0.01
	return monitorConfig{Alpha: alpha, Seed: 1, Numeric: drift.MethodPSI, Categorical: drift.MethodLInf, Predictions: drift.MethodPSI,
		Floors:   map[drift.Method]float64{drift.MethodPSI: 0.02, drift.MethodLInf: 0.02, drift.MethodWasserstein: 0.05, drift.MethodJensenShannon: 0.02},
		PersistK: 2, PersistN: 3, MinWindow: 500}
}

// monitor is services/monitor/detect.Detector's scoring of one window, line for line over
// the same ml/drift calls (this module cannot import the service): each feature's column
// scored with its method against a threshold calibrated on the reference for that window
// size, Benjamini–Hochberg at FDR α over the features' calibrated p-values, and the
// predictions against their own threshold.
type monitor struct {
	cfg   monitorConfig
	c     *drift.Calibrator
	names []string
	kinds []dataset.Kind
}

func newMonitor(p *profile.Profile, cfg monitorConfig) (*monitor, error) {
	refs, err := drift.References(p)
	if err != nil {
		return nil, err
	}
	cfg.Resamples = drift.ResamplesFor(len(refs), cfg.Alpha) // B for every reference, the predictions included
	c, err := drift.NewCalibrator(refs, drift.CalibrationOptions{Alpha: cfg.Alpha, Seed: cfg.Seed, Floors: cfg.Floors, Resamples: cfg.Resamples})
	if err != nil {
		return nil, err
	}
	m := &monitor{cfg: cfg, c: c}
	for _, f := range p.Features {
		m.names = append(m.names, f.Name)
		k := dataset.Numeric
		if f.Kind == drift.Categorical {
			k = dataset.Categorical
		}
		m.kinds = append(m.kinds, k)
	}
	return m, nil
}

// verdict is one window's outcome.
type verdict struct {
	data       bool   // the data-drift verdict: Benjamini–Hochberg rejected some feature
	rejected   []bool // per feature
	prediction bool   // the prediction-drift verdict (a kind of its own)
	// psi is each feature's statistic when it is PSI (numeric features by default), else NaN.
	psi []float64
}

// detect scores one window as detect.Detect does. cols receives each feature's column (the
// fixed rules reuse them); Detect copies each column into one buffer the same way.
func (m *monitor) detect(rows [][]float64, preds []float64, cols [][]float64) verdict {
	v := verdict{rejected: make([]bool, len(m.names)), psi: make([]float64, len(m.names))}
	var pvalues []float64
	var index []int
	for j, name := range m.names {
		method := m.cfg.Numeric
		if m.kinds[j] == dataset.Categorical {
			method = m.cfg.Categorical
		}
		col := cols[j][:len(rows)]
		for i, row := range rows {
			col[i] = row[j]
		}
		v.psi[j] = math.NaN()
		res, err := m.c.Test(name, method, col)
		if err != nil {
			continue // e.g. every value missing in the window
		}
		if method == drift.MethodPSI {
			v.psi[j] = res.Statistic
		}
		pvalues = append(pvalues, res.PValue)
		index = append(index, j)
	}
	for k, rejected := range drift.BenjaminiHochberg(pvalues, m.cfg.Alpha) {
		v.rejected[index[k]] = rejected
		v.data = v.data || rejected
	}
	if res, err := m.c.Test("prediction", m.cfg.Predictions, preds); err == nil {
		v.prediction = res.Drift
	}
	return v
}

// persistence is services/monitor/evaluate's event rule: a window raises an event when it
// drifted and at least K of the last N windows (itself included) did. The cooldown (event
// time) is not applied: the first event after a change is what is measured, and stationary
// events are counted without it (an upper bound).
type persistence struct {
	k, n   int
	recent []bool
}

func (p *persistence) observe(drifted bool) bool {
	p.recent = append(p.recent, drifted)
	if len(p.recent) > p.n {
		p.recent = p.recent[1:]
	}
	if !drifted {
		return false
	}
	hits := 0
	for _, d := range p.recent {
		if d {
			hits++
		}
	}
	return hits >= p.k
}

// Fixed rules of the table, per feature, "drift" when any feature alarms.
const (
	ruleKS  = "KS p ≤ 0.01"
	ruleW   = "normed Wasserstein ≥ 0.1"
	rulePSI = "PSI ≥ 0.2"
)

var rules = []string{ruleKS, ruleW, rulePSI}

// fixedRules applies the fixed thresholds with ml/drift's statistics: KS (ks_2samp, method
// auto) and normed Wasserstein against the whole reference column (as the anchors
// and Evidently use a reference data set; the monitor itself has only the profile), numeric
// features only; PSI over the profile's bins (deciles of the reference, 1e-4 for empty
// bins) for every feature, a categorical one over its categories.
type fixedRules struct {
	full []*drift.Reference // numeric: the whole reference column; nil for categorical
	bins []*drift.Reference // the profile's bins
}

func newFixedRules(p *profile.Profile, ref *dataset.Frame) (*fixedRules, error) {
	bins, err := drift.References(p)
	if err != nil {
		return nil, err
	}
	fr := &fixedRules{bins: bins[:len(p.Features)], full: make([]*drift.Reference, len(p.Features))}
	for j, f := range p.Features {
		if f.Kind != drift.Numeric {
			continue
		}
		if fr.full[j], err = drift.NewReference(f, ref.Cols[j]); err != nil {
			return nil, err
		}
	}
	return fr, nil
}

// window applies the rules in need (nil: all) to one window's columns, cols[j][:n], and
// reports which alarmed on some feature and which alarmed on feature j0. It sorts the numeric
// columns in place once (both KS and Wasserstein sort their input; a sorted one costs them a
// pass). psi holds the PSI the monitor computed for each numeric feature over the same bins
// (NaN where it did not), reused for the PSI rule.
func (fr *fixedRules) window(cols [][]float64, n int, psi []float64, need map[string]bool, j0 int) (alarm, onJ0 map[string]bool) {
	alarm, onJ0 = map[string]bool{}, map[string]bool{}
	hit := func(rule string, j int) {
		alarm[rule] = true
		if j == j0 {
			onJ0[rule] = true
		}
	}
	ks, w := need == nil || need[ruleKS], need == nil || need[ruleW]
	for j, ref := range fr.full {
		if ref == nil || !(ks || w) {
			continue
		}
		col := cols[j][:n]
		slices.Sort(col)
		if ks {
			if s, err := ref.Score(drift.MethodKS, col); err == nil && s.P <= 0.01 {
				hit(ruleKS, j)
			}
		}
		if w {
			if s, err := ref.Statistic(drift.MethodWasserstein, col); err == nil && s.Statistic >= 0.1 {
				hit(ruleW, j)
			}
		}
	}
	if need == nil || need[rulePSI] {
		for j, ref := range fr.bins {
			v := math.NaN()
			if psi != nil {
				v = psi[j]
			}
			if math.IsNaN(v) {
				s, err := ref.Statistic(drift.MethodPSI, cols[j][:n])
				if err != nil {
					continue
				}
				v = s.Statistic
			}
			if v >= 0.2 {
				hit(rulePSI, j)
			}
		}
	}
	return alarm, onJ0
}
