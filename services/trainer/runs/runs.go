// Package runs decides when a model is retrained and keeps the record of each training run:
// one run per model at a time (a second request joins it), drift events idempotent by event
// id, and at most one drift-triggered retrain per model within its cooldown — later drift
// events inside the cooldown are recorded as coalesced into that run. It is pure: the
// service persists the records and executes the runs.
package runs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Trigger kinds.
const (
	Manual   = "manual"
	Drift    = "drift"
	Schedule = "schedule"
)

// Stages of a run, in order; a run ends in Succeeded or Failed.
const (
	Queued    = "queued"
	Dataset   = "dataset"
	Training  = "training"
	Evaluate  = "evaluating"
	Register  = "registering"
	Gates     = "gating"
	Succeeded = "succeeded"
	Failed    = "failed"
)

// Trigger is why a run was requested.
type Trigger struct {
	Kind    string    `json:"kind"`
	EventID string    `json:"event_id,omitempty"` // the drift event's id
	At      time.Time `json:"at"`
	Reason  string    `json:"reason,omitempty"`
}

// Run is one training run's record.
type Run struct {
	ID        string    `json:"id"`
	Model     string    `json:"model"`
	Trigger   Trigger   `json:"trigger"`
	Stage     string    `json:"stage"`
	Started   time.Time `json:"started_at"`
	Ended     time.Time `json:"ended_at,omitzero"`
	Error     string    `json:"error,omitempty"`
	Coalesced []Trigger `json:"coalesced,omitempty"` // drift events folded into this run
	// Filled as the run goes: the registry run, dataset version and model version.
	RegistryRunID  string `json:"registry_run_id,omitempty"`
	DatasetVersion string `json:"dataset_version,omitempty"`
	ModelVersion   int    `json:"model_version,omitempty"`
	Promoted       bool   `json:"promoted"`
}

// Done reports whether the run ended.
func (r *Run) Done() bool { return r.Stage == Succeeded || r.Stage == Failed }

// ErrUnknownModel is returned for a model without a training spec.
var ErrUnknownModel = errors.New("unknown model")

// Decision says what a request led to.
type Decision struct {
	Run *Run
	// Started is true when the request started a new run; false when it joined a run in
	// progress, was a redelivered drift event, or was coalesced into a run within cooldown.
	Started bool
	Outcome string // "started", "joined", "duplicate" or "coalesced"
}

// Book holds the runs. It is safe for concurrent use; Run values it returns are snapshots.
type Book struct {
	mu        sync.Mutex
	cooldowns map[string]time.Duration // model → drift cooldown
	runs      map[string]*Run          // id → run
	active    map[string]string        // model → id of the run in progress
	lastDrift map[string]string        // model → id of the newest drift-triggered run
	byEvent   map[string]string        // drift event id → run it started or joined
	order     []string                 // run ids, oldest first, for eviction
	keep      int
	now       func() time.Time
}

// NewBook returns a book for the models and their drift cooldowns; keep bounds how many
// ended runs (and their drift event ids) are remembered.
func NewBook(cooldowns map[string]time.Duration, keep int, now func() time.Time) *Book {
	return &Book{cooldowns: cooldowns, runs: map[string]*Run{}, active: map[string]string{}, lastDrift: map[string]string{},
		byEvent: map[string]string{}, keep: max(keep, 16), now: now}
}

// Request asks for a run of model. A run in progress is joined; a drift event seen before
// returns the run it led to; a drift event within the cooldown of the last drift-triggered
// run is coalesced into that run.
func (b *Book) Request(model string, t Trigger) (Decision, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cooldown, ok := b.cooldowns[model]
	if !ok {
		return Decision{}, fmt.Errorf("%w %q", ErrUnknownModel, model)
	}
	if t.At.IsZero() {
		t.At = b.now()
	}
	if t.Kind == Drift && t.EventID != "" {
		if id, seen := b.byEvent[t.EventID]; seen {
			return Decision{Run: b.copy(id), Outcome: "duplicate"}, nil
		}
	}
	if id, ok := b.active[model]; ok {
		if t.Kind == Drift && t.EventID != "" {
			b.runs[id].Coalesced = append(b.runs[id].Coalesced, t)
			b.byEvent[t.EventID] = id
		}
		return Decision{Run: b.copy(id), Outcome: "joined"}, nil
	}
	if t.Kind == Drift {
		if id, ok := b.lastDrift[model]; ok {
			if last := b.runs[id]; last != nil && t.At.Sub(last.Trigger.At) < cooldown {
				last.Coalesced = append(last.Coalesced, t)
				if t.EventID != "" {
					b.byEvent[t.EventID] = id
				}
				return Decision{Run: b.copy(id), Outcome: "coalesced"}, nil
			}
		}
	}
	run := &Run{ID: newID(), Model: model, Trigger: t, Stage: Queued, Started: b.now()}
	b.runs[run.ID] = run
	b.order = append(b.order, run.ID)
	b.active[model] = run.ID
	if t.Kind == Drift {
		b.lastDrift[model] = run.ID
		if t.EventID != "" {
			b.byEvent[t.EventID] = run.ID
		}
	}
	b.evict()
	return Decision{Run: b.copy(run.ID), Started: true, Outcome: "started"}, nil
}

// Update changes a run's record with f (under the book's lock); ending stages free the model
// for its next run.
func (b *Book) Update(id string, f func(*Run)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.runs[id]
	if r == nil {
		return
	}
	f(r)
	if r.Done() {
		if r.Ended.IsZero() {
			r.Ended = b.now()
		}
		if b.active[r.Model] == id {
			delete(b.active, r.Model)
		}
	}
}

// Get returns a snapshot of the run.
func (b *Book) Get(id string) (*Run, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.runs[id]; !ok {
		return nil, false
	}
	return b.copy(id), true
}

func (b *Book) copy(id string) *Run {
	r := *b.runs[id]
	r.Coalesced = append([]Trigger(nil), r.Coalesced...)
	return &r
}

// evict forgets the oldest ended runs beyond keep. A run in progress, and a model's newest
// drift run (its cooldown still applies), are kept and skipped over, so they never stop
// older ended runs behind them from being forgotten.
func (b *Book) evict() {
	if len(b.order) <= b.keep {
		return
	}
	kept := b.order[:0]
	excess := len(b.order) - b.keep
	for _, id := range b.order {
		r := b.runs[id]
		if excess == 0 || !r.Done() || b.lastDrift[r.Model] == id {
			kept = append(kept, id)
			continue
		}
		excess--
		delete(b.runs, id)
		for ev, rid := range b.byEvent {
			if rid == id {
				delete(b.byEvent, ev)
			}
		}
	}
	clear(b.order[len(kept):])
	b.order = kept
}

func newID() string {
	var x [8]byte
	_, _ = rand.Read(x[:])
	return "tr-" + hex.EncodeToString(x[:])
}

// Past is a drift-triggered run recorded durably (the registry), for Restore.
type Past struct {
	RunID         string // the trainer's run id
	RegistryRunID string
	Model         string
	Trigger       Trigger
	Coalesced     []string // drift event ids folded into it
	// Stage is how the run ended: Succeeded (the default when empty) or Failed, with Error.
	Stage string
	Error string
}

// Restore makes the book remember runs of an earlier process, so that after a restart a
// redelivered drift event is still a duplicate and the cooldown still holds. Runs already
// known are left alone; past is any order. Restored runs are ended (the process that ran them
// is gone) and are the first to be forgotten when the book is full, oldest trigger first,
// except each model's newest drift run, which holds the cooldown.
func (b *Book) Restore(past []Past) {
	b.mu.Lock()
	defer b.mu.Unlock()
	past = slices.Clone(past)
	slices.SortStableFunc(past, func(x, y Past) int { return x.Trigger.At.Compare(y.Trigger.At) })
	var restored []string
	for _, p := range past {
		if _, known := b.runs[p.RunID]; known || p.RunID == "" {
			continue
		}
		run := &Run{ID: p.RunID, Model: p.Model, Trigger: p.Trigger, Stage: Succeeded, Started: p.Trigger.At, Ended: p.Trigger.At,
			RegistryRunID: p.RegistryRunID}
		if p.Stage == Failed {
			run.Stage, run.Error = Failed, p.Error
		}
		for _, id := range p.Coalesced {
			if id == "" {
				continue
			}
			run.Coalesced = append(run.Coalesced, Trigger{Kind: Drift, EventID: id})
			if _, seen := b.byEvent[id]; !seen {
				b.byEvent[id] = run.ID
			}
		}
		b.runs[run.ID] = run
		restored = append(restored, run.ID)
		if p.Trigger.EventID != "" {
			b.byEvent[p.Trigger.EventID] = run.ID
		}
		if last, ok := b.lastDrift[p.Model]; !ok || b.runs[last].Trigger.At.Before(p.Trigger.At) {
			b.lastDrift[p.Model] = run.ID
		}
	}
	b.order = append(restored, b.order...)
	b.evict()
}
