package online

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Reader answers online lookups: the one read path the lookup API and serving share.
type Reader struct {
	store   *Store
	catalog *views.Catalog
	engines map[string]*agg.Engine
}

// NewReader returns a reader over the views of cat.
func NewReader(store *Store, cat *views.Catalog) *Reader {
	r := &Reader{store: store, catalog: cat, engines: map[string]*agg.Engine{}}
	for _, n := range cat.Names() {
		v, _ := cat.Get(n)
		r.engines[n] = agg.NewEngine(v)
	}
	return r
}

// Ref names one feature of one view ("card_activity:txn_count_1h").
type Ref struct {
	View    string
	Feature string
	index   int
}

func (r Ref) String() string { return r.View + ":" + r.Feature }

// ErrUnknownFeature is returned for a reference to no feature.
type ErrUnknownFeature struct{ Ref string }

func (e ErrUnknownFeature) Error() string { return "unknown feature " + e.Ref }

// ParseRefs resolves "view:feature" references.
func (r *Reader) ParseRefs(refs []string) ([]Ref, error) {
	out := make([]Ref, len(refs))
	for i, s := range refs {
		view, feature, ok := strings.Cut(s, ":")
		v, known := r.catalog.Get(view)
		if !ok || !known {
			return nil, ErrUnknownFeature{Ref: s}
		}
		idx, found := v.Feature(feature)
		if !found {
			return nil, ErrUnknownFeature{Ref: s}
		}
		out[i] = Ref{View: view, Feature: feature, index: idx}
	}
	return out, nil
}

// Value is one feature of one entity.
type Value struct {
	Value     any // float64, string, or the declared default when not Present
	Status    agg.Status
	EventTime time.Time // zero when unknown
	// Stale is set when t is further behind the entity's newest event than the view's
	// read-back: the online state cannot answer exactly, the offline store can.
	Stale bool
}

// ValueOf turns feature i's read result into the value a client sees: the declared default
// when it is not present.
func ValueOf(v *views.View, i int, res agg.Result) Value {
	out := Value{Status: res.Status, Value: res.Value}
	if res.Status != agg.Present {
		out.Value = v.Features[i].Default
	}
	if res.EventTime > 0 {
		out.EventTime = time.UnixMilli(res.EventTime).UTC()
	}
	return out
}

// Engine returns the aggregation engine of a view.
func (r *Reader) Engine(view string) *agg.Engine { return r.engines[view] }

// Lookup returns values[entity][ref] at time at, reading each view's states in one MGET
// (one round trip per view). Missing values carry the feature's declared default.
func (r *Reader) Lookup(ctx context.Context, refs []Ref, entities []string, at time.Time) ([][]Value, error) {
	out := make([][]Value, len(entities))
	for i := range out {
		out[i] = make([]Value, len(refs))
	}
	byView := map[string][]int{}
	var order []string
	for i, ref := range refs {
		if _, ok := byView[ref.View]; !ok {
			order = append(order, ref.View)
		}
		byView[ref.View] = append(byView[ref.View], i)
	}
	t := at.UnixMilli()
	for _, name := range order {
		e := r.engines[name]
		blobs, err := r.store.States(ctx, e.View, entities)
		if err != nil {
			return nil, err
		}
		results := make([]agg.Result, len(e.View.Features))
		for ei, blob := range blobs {
			var st *agg.State
			if blob != nil {
				if st, err = e.Decode(blob); err != nil {
					return nil, fmt.Errorf("state of %s in %s: %w", entities[ei], name, err)
				}
			}
			e.ReadInto(st, t, results)
			stale := !e.Exact(st, t)
			for _, ri := range byView[name] {
				v := ValueOf(e.View, refs[ri].index, results[refs[ri].index])
				v.Stale = stale
				out[ei][ri] = v
			}
		}
	}
	return out, nil
}
