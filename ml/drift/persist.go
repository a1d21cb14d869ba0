package drift

import "fmt"

// Persistence turns per-window drift verdicts into events: an event when at least K of the
// last N windows drifted, and then none for the next Cooldown windows. Windows in cooldown
// are still recorded, so drift that outlasts the cooldown raises the next event at the first
// window after it; an event clears the record, so each event needs K drifted windows of its
// own. The state is the exported fields, JSON-able, so it can be checkpointed with the
// window state and restored after a restart. Not safe for concurrent use.
type Persistence struct {
	K        int    `json:"k"`
	N        int    `json:"n"`
	Cooldown int    `json:"cooldown"`
	Recent   []bool `json:"recent"` // the last ≤ N verdicts since the last event, oldest first
	Quiet    int    `json:"quiet"`  // windows of cooldown left
}

// NewPersistence returns a Persistence requiring k of the last n windows, then cooldown
// quiet windows.
func NewPersistence(k, n, cooldown int) (*Persistence, error) {
	p := &Persistence{K: k, N: n, Cooldown: cooldown}
	return p, p.Validate()
}

// Validate checks 1 ≤ K ≤ N, Cooldown ≥ 0 and a consistent state.
func (p *Persistence) Validate() error {
	switch {
	case p.K < 1 || p.K > p.N:
		return fmt.Errorf("drift: persistence needs 1 ≤ k ≤ n, got k=%d n=%d", p.K, p.N)
	case p.Cooldown < 0 || p.Quiet < 0 || p.Quiet > p.Cooldown:
		return fmt.Errorf("drift: persistence cooldown %d with %d quiet windows left", p.Cooldown, p.Quiet)
	case len(p.Recent) > p.N:
		return fmt.Errorf("drift: persistence state holds %d windows, n is %d", len(p.Recent), p.N)
	}
	return nil
}

// Observe records one window's verdict and reports whether it raises an event.
func (p *Persistence) Observe(drift bool) bool {
	p.Recent = append(p.Recent, drift)
	if len(p.Recent) > p.N {
		p.Recent = append(p.Recent[:0], p.Recent[len(p.Recent)-p.N:]...)
	}
	if p.Quiet > 0 {
		p.Quiet--
		return false
	}
	hits := 0
	for _, d := range p.Recent {
		if d {
			hits++
		}
	}
	if hits < p.K {
		return false
	}
	p.Recent = p.Recent[:0]
	p.Quiet = p.Cooldown
	return true
}
