package model

import (
	"fmt"
	"math"
	"strings"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/services/features/online"
)

// Where a value of a prediction came from, as logged with it.
const (
	Fetched   = "fetched"   // read from the online store
	Defaulted = "defaulted" // absent there, or not sent: the declared default
	Supplied  = "supplied"  // sent by the caller, which wins over the store
	Missing   = "missing"   // absent with no default: the model's own missing-value rule applies
	Request   = "request"   // a request-time field sent by the caller
)

// Column is how one signature input is obtained.
type Column struct {
	Name        string
	Categorical bool
	// Feature, for a feature-store input, is its reference ("card_activity:txn_count_1h");
	// empty for a request-time field.
	Feature string
	enc     *artifact.Encoder
	deflt   float64 // NaN when there is none
}

// Plan turns an instance (entity keys, request fields, supplied values) and the feature store's
// answer into the row a model reads.
type Plan struct {
	Columns []Column
	// Refs are the feature-store inputs, in signature order; JoinKeys the entity keys they
	// are read by (the same for every view of a model).
	Refs     []online.Ref
	JoinKeys []string
	colRef   []int // per signature column: its index in Refs, or -1
}

// RefResolver resolves feature references against the views this process serves.
type RefResolver interface {
	ParseRefs(refs []string) ([]online.Ref, error)
	JoinKeys(view string) ([]string, bool)
}

// NewPlan checks the signature against the served feature views and compiles its plan. A
// feature-store input is one whose name is a "view:feature" reference (how the trainer names
// them); every other input is a request-time field, or supplied by the caller.
func NewPlan(sig []artifact.Feature, views RefResolver) (*Plan, error) {
	p := &Plan{Columns: make([]Column, len(sig)), colRef: make([]int, len(sig))}
	var refs []string
	for i, f := range sig {
		c := Column{Name: f.Name, Categorical: f.Kind == "categorical", enc: f.Encoder(), deflt: math.NaN()}
		if f.Default != nil {
			c.deflt = *f.Default
		}
		if f.Source == "feature" || (f.Source == "" && strings.Contains(f.Name, ":")) {
			c.Feature = f.Name
			p.colRef[i] = len(refs)
			refs = append(refs, f.Name)
		} else {
			p.colRef[i] = -1
		}
		p.Columns[i] = c
	}
	if len(refs) == 0 {
		return p, nil
	}
	parsed, err := views.ParseRefs(refs)
	if err != nil {
		return nil, fmt.Errorf("signature against the served feature views: %w", err)
	}
	p.Refs = parsed
	for _, r := range parsed {
		keys, _ := views.JoinKeys(r.View)
		if p.JoinKeys == nil {
			p.JoinKeys = keys
		} else if strings.Join(keys, ",") != strings.Join(p.JoinKeys, ",") {
			return nil, fmt.Errorf("signature reads views keyed by %v and by %v; one model serves one entity", p.JoinKeys, keys)
		}
	}
	return p, nil
}

// Encode turns a raw value (number, string, bool) into what column c's model reads: the
// number itself, or a categorical code (NaN for a category the model never saw).
func (c *Column) Encode(v any) (float64, error) { return c.enc.Encode(v) }

// Default is the value used when the input is absent, and how it is logged.
func (c *Column) Default() (float64, string) {
	if math.IsNaN(c.deflt) {
		return c.deflt, Missing
	}
	return c.deflt, Defaulted
}
