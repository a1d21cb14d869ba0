package lifecycle

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// health tracks which tasks are failing, for the readiness probe.
type health struct {
	mu      sync.Mutex
	failed  map[string]error
	epoch   map[string]int              // bumped on every failure, so a stale recovery timer does nothing
	timerFn func(time.Duration, func()) // time.AfterFunc; replaceable in tests
}

func newHealth() *health {
	return &health{failed: map[string]error{}, epoch: map[string]int{},
		timerFn: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

func (h *health) failing(name string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed[name] = err
	h.epoch[name]++
}

// restarted clears the task's failure once it has run for d without failing again.
func (h *health) restarted(name string, d time.Duration) {
	h.mu.Lock()
	e := h.epoch[name]
	h.mu.Unlock()
	h.timerFn(d, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.epoch[name] == e {
			delete(h.failed, name)
		}
	})
}

func (h *health) ok(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.failed, name)
	h.epoch[name]++
}

func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failed) == 0 {
		return nil
	}
	parts := make([]string, 0, len(h.failed))
	for name, err := range h.failed {
		parts = append(parts, fmt.Sprintf("%s: %v", name, err))
	}
	sort.Strings(parts)
	return fmt.Errorf("failing, restarting: %s", strings.Join(parts, "; "))
}
