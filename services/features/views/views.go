// Package views loads feature view definitions (schemas/features/*.yaml): the entity join
// keys, the source stream, and each feature's aggregation, input field, optional filter,
// event-time window, and default. A view's version is the hash of its normalized definition.
package views

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Aggregations.
const (
	Count         = "count"
	Sum           = "sum"
	Avg           = "avg"
	Min           = "min"
	Max           = "max"
	Stddev        = "stddev"
	Last          = "last"
	CountDistinct = "count_distinct"
)

var aggs = []string{Count, Sum, Avg, Min, Max, Stddev, Last, CountDistinct}

// Windowed reports whether agg is computed from tiles of partial aggregates.
func Windowed(agg string) bool { return agg != Last && agg != CountDistinct }

// Duration is a time.Duration that reads "10m", "24h", "7d" from YAML.
type Duration time.Duration

// UnmarshalYAML accepts Go durations plus a "d" (day) unit.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses "90s", "10m", "1h", "7d".
func ParseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	return d, nil
}

// Filter keeps only events whose Field compares to Value with Op (eq, ne, gt, ge, lt, le, in).
type Filter struct {
	Field string `yaml:"field" json:"field"`
	Op    string `yaml:"op" json:"op"`
	Value any    `yaml:"value" json:"value"`
}

// Feature is one feature of a view.
type Feature struct {
	Name    string   `yaml:"name" json:"name"`
	Agg     string   `yaml:"agg" json:"agg"`
	Field   string   `yaml:"field,omitempty" json:"field,omitempty"`
	Window  Duration `yaml:"window,omitempty" json:"window,omitempty"`
	Filter  *Filter  `yaml:"filter,omitempty" json:"filter,omitempty"`
	Default any      `yaml:"default" json:"default"`

	// Tile is the tile size of a windowed feature (see TileFor).
	Tile time.Duration `yaml:"-" json:"-"`
}

// View is one feature view.
type View struct {
	Name     string    `yaml:"name" json:"name"`
	Entities []string  `yaml:"entities" json:"entities"`
	Source   string    `yaml:"source" json:"source"`
	TTL      Duration  `yaml:"ttl" json:"ttl"`
	Lateness Duration  `yaml:"lateness,omitempty" json:"lateness"`
	ReadBack Duration  `yaml:"read_back,omitempty" json:"read_back"`
	Features []Feature `yaml:"features" json:"features"`

	Version string `yaml:"-" json:"-"`
}

// Ladder is the tile sizes, finest first; each divides the next, so a coarse tile is made of
// whole finer tiles.
var Ladder = []time.Duration{time.Minute, 5 * time.Minute, time.Hour}

// TileFor is the tile size of a window: 1m up to 1h windows, 5m up to 24h, 1h beyond. A
// window is the tiles before the read time's tile plus the exact events of the read time's
// own tile, so it spans (W - tile, W]: at most one tile shorter than declared.
func TileFor(window time.Duration) time.Duration {
	switch {
	case window <= time.Hour:
		return time.Minute
	case window <= 24*time.Hour:
		return 5 * time.Minute
	default:
		return time.Hour
	}
}

// MaxWindow is the longest window of the view's windowed features.
func (v *View) MaxWindow() time.Duration {
	var m time.Duration
	for _, f := range v.Features {
		m = max(m, time.Duration(f.Window))
	}
	return m
}

// Feature returns the named feature's index.
func (v *View) Feature(name string) (int, bool) {
	for i, f := range v.Features {
		if f.Name == name {
			return i, true
		}
	}
	return -1, false
}

var ident = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Parse reads one view definition.
func Parse(raw []byte) (*View, error) {
	var v View
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("parse feature view: %w", err)
	}
	if err := v.check(); err != nil {
		return nil, fmt.Errorf("feature view %s: %w", v.Name, err)
	}
	norm, _ := json.Marshal(v) // field order fixed by the struct; map keys sorted
	sum := sha256.Sum256(norm)
	v.Version = hex.EncodeToString(sum[:6])
	return &v, nil
}

func (v *View) check() error {
	switch {
	case !ident.MatchString(v.Name):
		return errors.New("name must be lower-case letters, digits and _")
	case len(v.Entities) == 0:
		return errors.New("entities lists no join key")
	case v.Source == "":
		return errors.New("source names no stream")
	case v.TTL <= 0:
		return errors.New("ttl must be positive")
	case len(v.Features) == 0:
		return errors.New("no features")
	}
	if v.Lateness == 0 {
		v.Lateness = Duration(time.Hour)
	}
	if v.ReadBack == 0 {
		v.ReadBack = Duration(5 * time.Minute)
	}
	if v.ReadBack < 0 || v.Lateness < 0 {
		return errors.New("lateness and read_back must not be negative")
	}
	seen := map[string]bool{}
	for i := range v.Features {
		f := &v.Features[i]
		if !ident.MatchString(f.Name) || seen[f.Name] {
			return fmt.Errorf("feature %q: names must be unique lower-case identifiers", f.Name)
		}
		seen[f.Name] = true
		if !slices.Contains(aggs, f.Agg) {
			return fmt.Errorf("feature %s: agg %q is not one of %v", f.Name, f.Agg, aggs)
		}
		if f.Agg != Count && f.Field == "" {
			return fmt.Errorf("feature %s: %s needs a field", f.Name, f.Agg)
		}
		w := time.Duration(f.Window)
		if Windowed(f.Agg) || f.Agg == CountDistinct {
			if w <= 0 {
				return fmt.Errorf("feature %s: %s needs a window", f.Name, f.Agg)
			}
		}
		if w > 0 {
			f.Tile = TileFor(w)
			if w%f.Tile != 0 {
				return fmt.Errorf("feature %s: window %s is not a multiple of its tile size %s", f.Name, w, f.Tile)
			}
			if w > time.Duration(v.TTL) {
				return fmt.Errorf("feature %s: window %s is longer than the view's ttl %s", f.Name, w, time.Duration(v.TTL))
			}
		}
		if f.Filter != nil && !slices.Contains([]string{"eq", "ne", "gt", "ge", "lt", "le", "in"}, f.Filter.Op) {
			return fmt.Errorf("feature %s: filter op %q is not one of eq ne gt ge lt le in", f.Name, f.Filter.Op)
		}
	}
	return nil
}

// Catalog is the set of views by name.
type Catalog struct {
	views map[string]*View
	names []string
}

// Load reads every *.yaml in fsys.
func Load(fsys fs.FS) (*Catalog, error) {
	files, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	c := &Catalog{views: map[string]*View{}}
	for _, f := range files {
		raw, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, err
		}
		v, err := Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if _, dup := c.views[v.Name]; dup {
			return nil, fmt.Errorf("%s: view %s is defined twice", f, v.Name)
		}
		c.views[v.Name] = v
		c.names = append(c.names, v.Name)
	}
	sort.Strings(c.names)
	return c, nil
}

// Get returns the named view.
func (c *Catalog) Get(name string) (*View, bool) { v, ok := c.views[name]; return v, ok }

// Names lists the views, sorted.
func (c *Catalog) Names() []string { return c.names }

// BySource lists the views fed by stream.
func (c *Catalog) BySource(stream string) []*View {
	var out []*View
	for _, n := range c.names {
		if c.views[n].Source == stream {
			out = append(out, c.views[n])
		}
	}
	return out
}

// Sources lists the streams feeding any view.
func (c *Catalog) Sources() []string {
	var out []string
	for _, n := range c.names {
		if s := c.views[n].Source; !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
