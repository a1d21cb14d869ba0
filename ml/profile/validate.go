package profile

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Validate checks a profile read from outside is one the monitor can bin with: numFeatures
// features, kinds that agree with their summaries, strictly ascending finite edges with one
// more count than edges, rates in [0, 1], and sample rows of numFeatures values with at most
// one label each. Build's output always passes.
func (p *Profile) Validate(numFeatures int) error {
	if p.Rows < 0 {
		return fmt.Errorf("profile: %d rows", p.Rows)
	}
	if len(p.Features) != numFeatures {
		return fmt.Errorf("profile: %d features for %d inputs", len(p.Features), numFeatures)
	}
	for i := range p.Features {
		if err := p.Features[i].validate(); err != nil {
			return fmt.Errorf("profile feature %d (%s): %w", i, p.Features[i].Name, err)
		}
	}
	if p.Predictions.Kind != "" || p.Predictions.Numeric != nil {
		if err := p.Predictions.validate(); err != nil {
			return fmt.Errorf("profile predictions: %w", err)
		}
	}
	for i, row := range p.Sample.Rows {
		if len(row) != numFeatures {
			return fmt.Errorf("profile sample row %d has %d values for %d features", i, len(row), numFeatures)
		}
	}
	if len(p.Sample.Labels) != 0 && len(p.Sample.Labels) != len(p.Sample.Rows) {
		return fmt.Errorf("profile sample: %d labels for %d rows", len(p.Sample.Labels), len(p.Sample.Rows))
	}
	return nil
}

func (f *Feature) validate() error {
	if !(f.Missing >= 0 && f.Missing <= 1) {
		return fmt.Errorf("missing rate %v is not in [0, 1]", f.Missing)
	}
	if f.Rows < 0 {
		return fmt.Errorf("%d rows", f.Rows)
	}
	switch f.Kind {
	case "numeric":
		if len(f.Categories) > 0 {
			return errors.New("a numeric feature with categories")
		}
		if f.Numeric != nil {
			return f.Numeric.validate()
		}
	case "categorical":
		if f.Numeric != nil {
			return errors.New("a categorical feature with numeric bins")
		}
		for code, share := range f.Categories {
			if _, err := strconv.ParseInt(code, 10, 64); err != nil {
				return fmt.Errorf("category %q is not an integer code", code)
			}
			if !(share >= 0 && share <= 1) {
				return fmt.Errorf("category %s has share %v", code, share)
			}
		}
	default:
		return fmt.Errorf("kind %q is not numeric or categorical", f.Kind)
	}
	return nil
}

func (n *Numeric) validate() error {
	if len(n.Counts) != len(n.Edges)+1 {
		return fmt.Errorf("%d counts for %d edges, want %d", len(n.Counts), len(n.Edges), len(n.Edges)+1)
	}
	for i, e := range n.Edges {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return fmt.Errorf("edge %d is %v", i, e)
		}
		if i > 0 && !(e > n.Edges[i-1]) {
			return fmt.Errorf("edges are not strictly ascending at %d (%v after %v)", i, e, n.Edges[i-1])
		}
	}
	for i, c := range n.Counts {
		if c < 0 {
			return fmt.Errorf("bin %d has count %d", i, c)
		}
	}
	return nil
}
