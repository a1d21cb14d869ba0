// Package model holds the models serving answers with: a loaded, verified and warmed-up
// model version (Served), how its inputs are assembled (Plan), how versions are fetched from
// the registry and kept in a local cache so serving starts without the registry (Loader).
package model

import (
	"math"
	"time"

	"github.com/flywheel-ml/flywheel/ml/artifact"
)

// Served is one model version ready to answer: immutable once built, shared by every
// request that started on it.
type Served struct {
	Name     string
	Version  int
	Digest   string // sha256 of the artifact
	Artifact *artifact.Artifact
	Plan     *Plan
	LoadedAt time.Time
	WarmUp   time.Duration

	predictor artifact.Predictor
	multi     multiPredictor // set for models with several outputs
}

// multiPredictor is a model with one output per class.
type multiPredictor interface {
	PredictInto(row []float64, out []float64)
}

// Output is one prediction.
type Output struct {
	Score  float64   `json:"score"`           // probability (binary), value (regression), top class probability (multiclass)
	Label  *int      `json:"label,omitempty"` // binary: score ≥ threshold; multiclass: the top class
	Scores []float64 `json:"scores,omitempty"`
}

// NewServed wraps a decoded artifact.
func NewServed(name string, version int, digest string, a *artifact.Artifact, plan *Plan) *Served {
	s := &Served{Name: name, Version: version, Digest: digest, Artifact: a, Plan: plan, LoadedAt: time.Now(),
		predictor: a.Predictor()}
	if m, ok := s.predictor.(multiPredictor); ok && a.Task == "multiclass" {
		s.multi = m
	}
	return s
}

// Classes is the number of outputs of a multiclass model (0 otherwise).
func (s *Served) Classes() int {
	type classed interface{ NumClasses() int }
	if c, ok := s.multi.(classed); ok {
		return c.NumClasses()
	}
	return 0
}

// Predict scores one assembled row.
func (s *Served) Predict(row []float64) Output {
	if s.multi != nil {
		scores := make([]float64, s.Classes())
		s.multi.PredictInto(row, scores)
		best := 0
		for k, v := range scores {
			if v > scores[best] {
				best = k
			}
		}
		return Output{Score: scores[best], Label: &best, Scores: scores}
	}
	y := s.predictor.Predict(row)
	if s.Artifact.Task != "binary" {
		return Output{Score: y}
	}
	label := 0
	if y >= s.Artifact.Threshold {
		label = 1
	}
	return Output{Score: y, Label: &label}
}

// warm runs the model over rows like the ones it will see (its reference sample, or one row
// of defaults) so the first requests do not pay for first-touch costs, and checks it answers
// finite scores.
func (s *Served) warm(rounds int) error {
	rows := [][]float64{}
	if p := s.Artifact.Profile; p != nil {
		rows = p.Sample.Rows
	}
	if len(rows) == 0 {
		row := make([]float64, len(s.Plan.Columns))
		for i := range s.Plan.Columns {
			row[i], _ = s.Plan.Columns[i].Default()
		}
		rows = [][]float64{row}
	}
	start := time.Now()
	for r := 0; r < rounds; r++ {
		for _, row := range rows {
			if len(row) != len(s.Plan.Columns) {
				continue
			}
			out := s.Predict(row)
			if math.IsNaN(out.Score) || math.IsInf(out.Score, 0) {
				return errNotFinite
			}
		}
	}
	s.WarmUp = time.Since(start)
	return nil
}
