// Package swap moves the served versions when the registry moves an alias: it loads,
// verifies and warms the new version in the background, then switches the route atomically
// (requests in flight finish on the version they started with). When loading fails the old
// version keeps serving; the failure is logged and counted. A transient failure (registry
// down) is retried until a newer move supersedes it; a bad artifact is not.
package swap

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/retry"
	"github.com/flywheel-ml/flywheel/services/registry/client"
	"github.com/flywheel-ml/flywheel/services/serving/model"
	"github.com/flywheel-ml/flywheel/services/serving/routing"
)

// Loader loads a model version ready to serve.
type Loader interface {
	Load(ctx context.Context, name string, version int) (*model.Served, error)
}

// AliasStore remembers the aliases served, so a restart serves the same versions at once.
type AliasStore interface {
	PutAliases(name string, aliases map[string]int) error
}

type key struct{ model, alias string }

// Manager applies alias moves.
type Manager struct {
	ctx     context.Context
	loader  Loader
	table   *routing.Table
	aliases AliasStore // nil: not remembered
	log     *zap.Logger
	backoff retry.Backoff

	mu      sync.Mutex
	desired map[key]int // 0: remove
	running map[key]bool
	served  map[string]map[string]int
	wg      sync.WaitGroup

	swaps    *prometheus.CounterVec
	failures *prometheus.CounterVec
	version  *prometheus.GaugeVec
}

// New returns a manager whose loads stop when ctx ends.
func New(ctx context.Context, loader Loader, table *routing.Table, aliases AliasStore, log *zap.Logger, reg prometheus.Registerer) *Manager {
	m := &Manager{ctx: ctx, loader: loader, table: table, aliases: aliases, log: log,
		backoff: retry.Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second},
		desired: map[key]int{}, running: map[key]bool{}, served: map[string]map[string]int{},
		swaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "serving_model_swaps_total",
			Help: "Versions switched in, by model and alias."}, []string{"model", "alias"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "serving_model_load_failures_total",
			Help: "Versions that failed to load (the previous version kept serving)."}, []string{"model", "alias"}),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "serving_model_version",
			Help: "The version served under each alias (0: none)."}, []string{"model", "alias"}),
	}
	if reg != nil {
		reg.MustRegister(m.swaps, m.failures, m.version)
	}
	return m
}

// Move asks for version to be served under alias; version 0 removes the alias. It returns
// at once; the newest move of a (model, alias) wins.
func (m *Manager) Move(name, alias string, version int) {
	if alias != routing.Champion && alias != routing.Challenger {
		return
	}
	k := key{name, alias}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.desired[k] = version
	if m.running[k] {
		return
	}
	m.running[k] = true
	m.wg.Add(1)
	go m.apply(k)
}

// Loading reports whether a move is still being applied.
func (m *Manager) Loading() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.running {
		if r {
			return true
		}
	}
	return false
}

// Wait blocks until every move asked for so far has been applied or abandoned.
func (m *Manager) Wait() { m.wg.Wait() }

func (m *Manager) apply(k key) {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		want := m.desired[k]
		current := m.served[k.model][k.alias]
		m.mu.Unlock()
		if want != current {
			m.applyOne(k, want)
		}
		m.mu.Lock()
		if m.desired[k] == want {
			m.running[k] = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
	}
}

// applyOne loads want and switches to it; it gives up when a newer move arrives.
func (m *Manager) applyOne(k key, want int) {
	log := m.log.With(zap.String("model", k.model), zap.String("alias", k.alias), zap.Int("version", want))
	if want == 0 {
		if k.alias == routing.Champion {
			log.Warn("the champion alias was deleted; serving the last champion until a new one is set")
			return
		}
		if _, err := m.table.Set(k.model, k.alias, nil); err != nil {
			log.Error("remove the challenger", zap.Error(err))
		}
		m.remember(k, 0)
		log.Info("challenger removed")
		return
	}
	var served *model.Served
	superseded := errors.New("superseded by a newer move")
	err := retry.Do(m.ctx, m.backoff, func(ctx context.Context) error {
		m.mu.Lock()
		newer := m.desired[k] != want
		m.mu.Unlock()
		if newer {
			return retry.Permanent(superseded)
		}
		s, err := m.loader.Load(ctx, k.model, want)
		if errors.Is(err, model.ErrNotCached) {
			log.Warn("model loaded but not cached locally", zap.Error(err))
			err = nil
		}
		if err != nil && !transient(err) {
			return retry.Permanent(err)
		}
		served = s
		return err
	}, func(attempt int, err error, wait time.Duration) {
		m.failures.WithLabelValues(k.model, k.alias).Inc()
		retry.Logged(log, "load the new version; the previous one keeps serving")(attempt, err, wait)
	})
	if errors.Is(err, superseded) || m.ctx.Err() != nil {
		return
	}
	if err != nil {
		m.failures.WithLabelValues(k.model, k.alias).Inc()
		log.Error("the new version cannot be served; the previous one keeps serving", zap.Error(err))
		return
	}
	previous, err := m.table.Set(k.model, k.alias, served)
	if err != nil {
		m.failures.WithLabelValues(k.model, k.alias).Inc()
		log.Error("the new version cannot be served with the other alias's version; the previous one keeps serving", zap.Error(err))
		return
	}
	m.swaps.WithLabelValues(k.model, k.alias).Inc()
	m.remember(k, want)
	from := 0
	if previous != nil {
		from = previous.Version
	}
	log.Info("serving a new version", zap.Int("previous", from), zap.String("sha256", served.Digest),
		zap.Duration("warm_up", served.WarmUp))
}

func (m *Manager) remember(k key, version int) {
	m.mu.Lock()
	if m.served[k.model] == nil {
		m.served[k.model] = map[string]int{}
	}
	if version == 0 {
		delete(m.served[k.model], k.alias)
	} else {
		m.served[k.model][k.alias] = version
	}
	snapshot := make(map[string]int, len(m.served[k.model]))
	for a, v := range m.served[k.model] {
		snapshot[a] = v
	}
	m.mu.Unlock()
	m.version.WithLabelValues(k.model, k.alias).Set(float64(version))
	if m.aliases != nil {
		if err := m.aliases.PutAliases(k.model, snapshot); err != nil {
			m.log.Warn("remember the served aliases in the local cache", zap.String("model", k.model), zap.Error(err))
		}
	}
}

// Served returns the versions served under each alias of a model.
func (m *Manager) Served(name string) map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]int{}
	for a, v := range m.served[name] {
		out[a] = v
	}
	return out
}

// transient says whether retrying may help: a registry that cannot be reached or answers
// 5xx, yes; a missing version, a bad artifact, a digest or signature mismatch, no.
func transient(err error) bool {
	var reg *client.Error
	if errors.As(err, &reg) {
		return reg.Status >= 500 || reg.Status == 429
	}
	var bad *model.LoadError
	return !errors.As(err, &bad)
}
