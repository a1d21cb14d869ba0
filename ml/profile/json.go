package profile

import (
	"encoding/json"
	"math"
)

// JSON has no NaN: sample rows carry missing values as null.

type sampleJSON struct {
	Rows   [][]*float64 `json:"rows"`
	Labels []float64    `json:"labels,omitempty"`
}

// MarshalJSON writes missing values as null.
func (s Sample) MarshalJSON() ([]byte, error) {
	out := sampleJSON{Rows: make([][]*float64, len(s.Rows)), Labels: s.Labels}
	for i, row := range s.Rows {
		r := make([]*float64, len(row))
		for j := range row {
			if !math.IsNaN(row[j]) {
				r[j] = &row[j]
			}
		}
		out.Rows[i] = r
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads null as a missing value.
func (s *Sample) UnmarshalJSON(b []byte) error {
	var in sampleJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	s.Labels = in.Labels
	s.Rows = make([][]float64, len(in.Rows))
	for i, row := range in.Rows {
		r := make([]float64, len(row))
		for j, v := range row {
			r[j] = math.NaN()
			if v != nil {
				r[j] = *v
			}
		}
		s.Rows[i] = r
	}
	return nil
}
