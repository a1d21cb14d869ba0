// Package modelspec reads training specs (schemas/models/<name>.yaml): what a model learns
// from, how its examples are built from the event streams and the feature store, how it is
// trained, and the gates a candidate must pass to replace the champion. The trainer, serving
// and the monitor read the same spec; errors name the file and the field to fix.
package modelspec

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Tasks.
const (
	Binary     = "binary"
	Regression = "regression"
)

// Algorithms.
const (
	GBDT     = "gbdt"
	Logistic = "logistic"
	Ridge    = "ridge"
)

// Promotion policies.
const (
	Auto   = "auto"
	Manual = "manual"
)

// Field kinds.
const (
	Numeric     = "numeric"
	Categorical = "categorical"
)

// Spec is one model's training spec.
type Spec struct {
	Name             string    `yaml:"name" json:"name"`
	Task             string    `yaml:"task" json:"task"`
	PredictionStream string    `yaml:"prediction_stream" json:"prediction_stream"`
	Label            Label     `yaml:"label" json:"label"`
	RequestFields    []Field   `yaml:"request_fields" json:"request_fields"`
	Features         []string  `yaml:"features" json:"features"`
	Algorithm        Algorithm `yaml:"algorithm" json:"algorithm"`
	Training         Training  `yaml:"training" json:"training"`
	Threshold        float64   `yaml:"threshold" json:"threshold"`
	Gates            []Gate    `yaml:"gates" json:"gates"`
	Promotion        string    `yaml:"promotion" json:"promotion"`
	Cooldown         Duration  `yaml:"cooldown" json:"cooldown"`
	Schedule         Duration  `yaml:"schedule" json:"schedule"`
}

// Label says where a model's labels come from and how one finds its example.
type Label struct {
	Stream string `yaml:"stream" json:"stream"`
	Field  string `yaml:"field" json:"field"`
	// EventIDField is the label's field naming the prediction event (its event id): the
	// example is that event, with features as of its event time.
	EventIDField string   `yaml:"event_id_field" json:"event_id_field"`
	Horizon      Duration `yaml:"horizon" json:"horizon"`
}

// Field is a request-time field, taken from the prediction event.
type Field struct {
	Name    string `yaml:"name" json:"name"`
	Kind    string `yaml:"kind" json:"kind"`
	Default any    `yaml:"default,omitempty" json:"default,omitempty"`
}

// Algorithm names the training algorithm and its hyperparameters (validated by the trainer
// against the algorithm's own parameter set).
type Algorithm struct {
	Name   string         `yaml:"name" json:"name"`
	Params map[string]any `yaml:"params" json:"params"`
}

// Training bounds the dataset.
type Training struct {
	Window    Duration  `yaml:"window" json:"window"`
	Holdout   float64   `yaml:"holdout" json:"holdout"`
	MinRows   int       `yaml:"min_rows" json:"min_rows"`
	LabelRate RateRange `yaml:"label_rate" json:"label_rate"`
	Seed      uint64    `yaml:"seed" json:"seed"`
	// FreshRows makes a drift-triggered retrain first wait until this many labelled
	// examples with event times after the drift's detection exist (at most FreshWait,
	// then it trains on what there is): retraining the moment drift is seen would learn
	// nothing new, since the drifted data has no labels yet. 0: no wait.
	FreshRows int      `yaml:"fresh_rows,omitempty" json:"fresh_rows,omitempty"`
	FreshWait Duration `yaml:"fresh_wait,omitempty" json:"fresh_wait,omitempty"`
}

// RateRange bounds the positive-label rate of a binary dataset.
type RateRange struct {
	Min float64 `yaml:"min" json:"min"`
	Max float64 `yaml:"max" json:"max"`
}

// Duration reads "90s", "10m", "24h", "7d".
type Duration time.Duration

// UnmarshalYAML accepts Go durations plus a "d" (day) unit; 0 is allowed.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// String formats the duration in days when it is whole days ("7d"), else as Go does.
func (d Duration) String() string {
	day := 24 * time.Hour
	if v := time.Duration(d); v > 0 && v%day == 0 {
		return strconv.Itoa(int(v/day)) + "d"
	}
	return time.Duration(d).String()
}

// UnmarshalText reads what MarshalText wrote (the spec as JSON, stored with each run).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration the way it is read.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ParseDuration parses "0", "90s", "10m", "1h", "7d".
func ParseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration (use 90s, 10m, 24h or 7d)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (use 90s, 10m, 24h or 7d)", s)
	}
	return d, nil
}

// FeatureRef is a parsed "view:feature".
type FeatureRef struct{ View, Feature string }

func (r FeatureRef) String() string { return r.View + ":" + r.Feature }

// FeatureRefs parses the feature list (already validated by Parse).
func (s *Spec) FeatureRefs() []FeatureRef {
	out := make([]FeatureRef, len(s.Features))
	for i, f := range s.Features {
		v, name, _ := strings.Cut(f, ":")
		out[i] = FeatureRef{View: v, Feature: name}
	}
	return out
}

var (
	namePattern    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	fieldPattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	featurePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*$`)
)

// Parse reads and validates one spec; file names the source in errors.
func Parse(file string, data []byte) (*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var s Spec
	s.Threshold = math.NaN() // absent → 0.5 below; an explicit value is kept
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if math.IsNaN(s.Threshold) {
		s.Threshold = 0.5
	}
	if s.Promotion == "" {
		s.Promotion = Auto
	}
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &s, nil
}

// fieldErr names the field to fix.
func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
}

func (s *Spec) validate() error {
	if !namePattern.MatchString(s.Name) {
		return fieldErr("name", "%q must be lower-case letters, digits and _, starting with a letter", s.Name)
	}
	if s.Task != Binary && s.Task != Regression {
		return fieldErr("task", "%q must be %s or %s", s.Task, Binary, Regression)
	}
	if !namePattern.MatchString(s.PredictionStream) {
		return fieldErr("prediction_stream", "a stream name is required, got %q", s.PredictionStream)
	}
	if !namePattern.MatchString(s.Label.Stream) {
		return fieldErr("label.stream", "a stream name is required, got %q", s.Label.Stream)
	}
	if !fieldPattern.MatchString(s.Label.Field) {
		return fieldErr("label.field", "a field name is required, got %q", s.Label.Field)
	}
	if !fieldPattern.MatchString(s.Label.EventIDField) {
		return fieldErr("label.event_id_field", "the label field naming the prediction event is required, got %q", s.Label.EventIDField)
	}
	if s.Label.Horizon <= 0 {
		return fieldErr("label.horizon", "must be positive (how long after its event a label may arrive), e.g. 30d")
	}
	seen := map[string]string{}
	for i, f := range s.RequestFields {
		where := fmt.Sprintf("request_fields[%d]", i)
		if !fieldPattern.MatchString(f.Name) {
			return fieldErr(where+".name", "%q is not a field name", f.Name)
		}
		if f.Kind != Numeric && f.Kind != Categorical {
			return fieldErr(where+".kind", "%q must be %s or %s", f.Kind, Numeric, Categorical)
		}
		if prev, dup := seen[f.Name]; dup {
			return fieldErr(where+".name", "%q is also %s", f.Name, prev)
		}
		seen[f.Name] = where
	}
	for i, f := range s.Features {
		where := fmt.Sprintf("features[%d]", i)
		if !featurePattern.MatchString(f) {
			return fieldErr(where, "%q must be view:feature, e.g. card_activity:txn_count_1h", f)
		}
		if prev, dup := seen[f]; dup {
			return fieldErr(where, "%q is also %s", f, prev)
		}
		seen[f] = where
	}
	if len(s.RequestFields)+len(s.Features) == 0 {
		return fieldErr("features", "a model needs at least one request field or feature")
	}
	switch s.Algorithm.Name {
	case GBDT, Logistic:
		if s.Task == Regression && s.Algorithm.Name == Logistic {
			return fieldErr("algorithm.name", "logistic is for binary tasks; use ridge or gbdt for regression")
		}
	case Ridge:
		if s.Task == Binary {
			return fieldErr("algorithm.name", "ridge is for regression tasks; use logistic or gbdt for binary")
		}
	default:
		return fieldErr("algorithm.name", "%q must be one of %s, %s, %s", s.Algorithm.Name, GBDT, Logistic, Ridge)
	}
	if err := s.Training.validate(s.Task); err != nil {
		return err
	}
	if s.Task == Binary && !(s.Threshold > 0 && s.Threshold < 1) {
		return fieldErr("threshold", "must be between 0 and 1, got %v", s.Threshold)
	}
	for i := range s.Gates {
		if err := s.Gates[i].validate(fmt.Sprintf("gates[%d]", i), s.Task); err != nil {
			return err
		}
	}
	if s.Promotion != Auto && s.Promotion != Manual {
		return fieldErr("promotion", "%q must be %s or %s", s.Promotion, Auto, Manual)
	}
	return nil
}

func (t Training) validate(task string) error {
	if t.Window <= 0 {
		return fieldErr("training.window", "must be positive, e.g. 7d")
	}
	if !(t.Holdout > 0 && t.Holdout < 1) {
		return fieldErr("training.holdout", "must be a fraction between 0 and 1 (the latest share by event time), got %v", t.Holdout)
	}
	if t.MinRows < 10 {
		return fieldErr("training.min_rows", "must be at least 10, got %d", t.MinRows)
	}
	if t.FreshRows < 0 || t.FreshWait < 0 {
		return fieldErr("training.fresh_rows", "fresh_rows and fresh_wait must not be negative")
	}
	if task == Binary {
		r := t.LabelRate
		if !(r.Min >= 0 && r.Max <= 1 && r.Min < r.Max) {
			return fieldErr("training.label_rate", "needs 0 <= min < max <= 1, got min %v max %v", r.Min, r.Max)
		}
	}
	return nil
}

// Load reads every *.yaml spec in fsys, keyed by model name; names must match file names.
func Load(fsys fs.FS) (map[string]*Spec, error) {
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("list training specs: %w", err)
	}
	sort.Strings(files)
	out := make(map[string]*Spec, len(files))
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		s, err := Parse(f, data)
		if err != nil {
			return nil, err
		}
		if want := strings.TrimSuffix(path.Base(f), ".yaml"); s.Name != want {
			return nil, fmt.Errorf("%s: name: %q must match the file name %q", f, s.Name, want)
		}
		out[s.Name] = s
	}
	if len(out) == 0 {
		return nil, errors.New("no training specs (*.yaml) found")
	}
	return out, nil
}
