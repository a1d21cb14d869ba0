package online

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// Reader answers online lookups: the one read path the lookup API and serving share.
type Reader struct {
	store   *Store
	catalog *views.Catalog
	engines map[string]*agg.Engine

	// decoded keeps recently read states with the blob they came from: an entity whose blob
	// is unchanged since the last lookup is not decoded again. Reads never modify a state, so
	// cached states are shared between concurrent lookups.
	mu      sync.Mutex
	decoded map[string]decodedState

	epochs EpochSource // nil: no loss check
}

// EpochSource knows the epoch of the online state each view was built on ("" when it does
// not know yet): the stream processor.
type EpochSource interface {
	KnownEpoch(view string) string
}

// ErrStoreLost is returned by a lookup that found the view's epoch missing or changed: the
// online store no longer holds the state it was built on, and its values must not be served.
type ErrStoreLost struct{ View string }

func (e ErrStoreLost) Error() string {
	return "the online store lost the state of view " + e.View + "; it is being rebuilt from the event log"
}

// CheckEpochs makes every lookup read the view's epoch with its states (same round trip) and
// fail with ErrStoreLost when it differs from what src knows.
func (r *Reader) CheckEpochs(src EpochSource) *Reader {
	r.epochs = src
	return r
}

type decodedState struct {
	blob  []byte
	state *agg.State
}

// maxDecoded bounds the decoded-state cache; past it the cache starts over.
const maxDecoded = 20_000

// NewReader returns a reader over the views of cat.
func NewReader(store *Store, cat *views.Catalog) *Reader {
	r := &Reader{store: store, catalog: cat, engines: map[string]*agg.Engine{}, decoded: map[string]decodedState{}}
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

// state decodes blob, or returns the state decoded from the same blob before.
func (r *Reader) state(e *agg.Engine, entity string, blob []byte) (*agg.State, error) {
	if blob == nil {
		return nil, nil
	}
	key := e.View.Name + "\x00" + entity
	r.mu.Lock()
	c, ok := r.decoded[key]
	r.mu.Unlock()
	if ok && bytes.Equal(c.blob, blob) {
		return c.state, nil
	}
	st, err := e.Decode(blob)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.decoded) >= maxDecoded {
		clear(r.decoded)
	}
	r.decoded[key] = decodedState{blob: blob, state: st}
	r.mu.Unlock()
	return st, nil
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
		var blobs [][]byte
		var err error
		if r.epochs == nil {
			blobs, err = r.store.States(ctx, e.View, entities)
		} else {
			var epoch string
			blobs, epoch, err = r.store.StatesEpoch(ctx, e.View, entities)
			if known := r.epochs.KnownEpoch(name); err == nil && known != "" && epoch != known {
				return nil, ErrStoreLost{View: name}
			}
		}
		if err != nil {
			return nil, err
		}
		results := make([]agg.Result, len(e.View.Features))
		for ei, blob := range blobs {
			st, err := r.state(e, entities[ei], blob)
			if err != nil {
				return nil, fmt.Errorf("state of %s in %s: %w", entities[ei], name, err)
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
