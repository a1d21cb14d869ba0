// Package routing decides which loaded model version answers a request: the champion, the
// challenger for a sticky canary share of entities, a version the caller pins, and whether
// the challenger also scores in the shadow. A model's route is immutable; a swap publishes a
// new route, so a request that started on a version finishes on it.
package routing

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/serving/model"
)

// Aliases served.
const (
	Champion   = "champion"
	Challenger = "challenger"
)

// Policy splits a model's traffic.
type Policy struct {
	// Canary is the share of entities (0–1) the challenger answers. The split is by a hash
	// of the entity, so an entity keeps its version while the share stays the same, and
	// raising the share only moves more entities over.
	Canary float64 `json:"canary"`
	// Shadow is the share of requests (0–1) the challenger also scores, logged and never returned.
	Shadow float64 `json:"shadow"`
	// AllowDefaults answers with the declared defaults when the online store is down, instead of 503.
	AllowDefaults bool `json:"allow_defaults"`
}

// Validate checks the shares.
func (p Policy) Validate() error {
	if !(p.Canary >= 0 && p.Canary <= 1) || !(p.Shadow >= 0 && p.Shadow <= 1) {
		return fmt.Errorf("canary %v and shadow %v must be between 0 and 1", p.Canary, p.Shadow)
	}
	return nil
}

// Route is how one model is served right now.
type Route struct {
	Model      string
	Champion   *model.Served // nil until one is loaded
	Challenger *model.Served
	Policy     Policy
	// Refs is every feature-store input of the versions served, read once per request;
	// JoinKeys the entity keys they are read by.
	Refs     []online.Ref
	JoinKeys []string
	index    map[*model.Served][]int
}

// RefIndex maps s.Plan.Refs[j] to its position in r.Refs.
func (r *Route) RefIndex(s *model.Served) []int { return r.index[s] }

// Ready says a champion answers.
func (r *Route) Ready() bool { return r != nil && r.Champion != nil }

// Versions lists the versions served, champion first.
func (r *Route) Versions() []*model.Served {
	var out []*model.Served
	for _, s := range []*model.Served{r.Champion, r.Challenger} {
		if s != nil && (len(out) == 0 || out[0] != s) {
			out = append(out, s)
		}
	}
	return out
}

// ErrNoSuchVersion is returned for a pin naming no version served.
var ErrNoSuchVersion = errors.New("no such version is served")

// Pick returns the version that answers entity, and the one that scores it in the shadow
// (nil for none). pin, when set, is "champion", "challenger" or a version number.
func (r *Route) Pick(entity, pin string) (primary *model.Served, alias string, err error) {
	if pin != "" {
		switch pin {
		case Champion:
			if r.Champion != nil {
				return r.Champion, Champion, nil
			}
		case Challenger:
			if r.Challenger != nil {
				return r.Challenger, Challenger, nil
			}
		default:
			v, convErr := strconv.Atoi(pin)
			for _, s := range []*model.Served{r.Champion, r.Challenger} {
				if convErr == nil && s != nil && s.Version == v {
					return s, r.aliasOf(s), nil
				}
			}
		}
		return nil, "", fmt.Errorf("%w: %s %s (serving %s)", ErrNoSuchVersion, r.Model, pin, r.describe())
	}
	if r.Challenger != nil && r.Policy.Canary > 0 && share(r.Model, entity) < r.Policy.Canary {
		return r.Challenger, Challenger, nil
	}
	return r.Champion, Champion, nil
}

// Shadow returns the version that also scores a request answered by primary, or nil.
func (r *Route) Shadow(primary *model.Served) *model.Served {
	if r.Challenger == nil || primary != r.Champion || r.Challenger == r.Champion || r.Policy.Shadow <= 0 {
		return nil
	}
	if r.Policy.Shadow < 1 && rand.Float64() >= r.Policy.Shadow {
		return nil
	}
	return r.Challenger
}

func (r *Route) aliasOf(s *model.Served) string {
	if s == r.Champion {
		return Champion
	}
	return Challenger
}

func (r *Route) describe() string {
	s := "champion "
	if r.Champion != nil {
		s += strconv.Itoa(r.Champion.Version)
	} else {
		s += "none"
	}
	if r.Challenger != nil {
		s += ", challenger " + strconv.Itoa(r.Challenger.Version)
	}
	return s
}

// share places an entity in [0, 1) by a hash of model and entity.
func share(modelName, entity string) float64 {
	h := fnv.New64a()
	h.Write([]byte(modelName))
	h.Write([]byte{0})
	h.Write([]byte(entity))
	return float64(mix(h.Sum64())>>11) / (1 << 53)
}

// mix is murmur3's 64-bit finaliser: FNV alone leaves the high bits of similar keys
// ("card-1", "card-2") correlated, which skews the split. Every replica computes the same.
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// Table holds every model's route. Reads are one atomic load.
type Table struct {
	mu       sync.Mutex // serialises writers
	routes   atomic.Pointer[map[string]*Route]
	policies map[string]Policy
}

// NewTable returns a table with the configured traffic policies.
func NewTable(policies map[string]Policy) *Table {
	t := &Table{policies: map[string]Policy{}}
	for k, v := range policies {
		t.policies[k] = v
	}
	empty := map[string]*Route{}
	t.routes.Store(&empty)
	return t
}

// Get returns the model's route, nil when the model is not served.
func (t *Table) Get(name string) *Route { return (*t.routes.Load())[name] }

// Models lists the served models.
func (t *Table) Models() []string {
	m := *t.routes.Load()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Set serves s under alias (nil removes the alias) and returns the version it replaced.
func (t *Table) Set(name, alias string, s *model.Served) (previous *model.Served, err error) {
	return t.update(name, func(r *Route) (*model.Served, error) {
		switch alias {
		case Champion:
			previous, r.Champion = r.Champion, s
		case Challenger:
			previous, r.Challenger = r.Challenger, s
		default:
			return nil, fmt.Errorf("alias %q is not served (only champion and challenger)", alias)
		}
		return previous, nil
	})
}

// SetPolicy changes a model's traffic split.
func (t *Table) SetPolicy(name string, p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	_, err := t.update(name, func(r *Route) (*model.Served, error) {
		r.Policy = p
		return nil, nil
	})
	return err
}

func (t *Table) update(name string, change func(r *Route) (*model.Served, error)) (*model.Served, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.routes.Load()
	r := &Route{Model: name, Policy: t.policies[name]}
	if cur := old[name]; cur != nil {
		*r = *cur
	}
	previous, err := change(r)
	if err != nil {
		return nil, err
	}
	t.policies[name] = r.Policy
	if err := r.compile(); err != nil {
		return nil, err
	}
	next := make(map[string]*Route, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if r.Champion == nil && r.Challenger == nil {
		delete(next, name)
	} else {
		next[name] = r
	}
	t.routes.Store(&next)
	return previous, nil
}

// compile unions the versions' feature reads so one lookup serves either.
func (r *Route) compile() error {
	r.Refs, r.JoinKeys, r.index = nil, nil, map[*model.Served][]int{}
	pos := map[string]int{}
	for _, s := range r.Versions() {
		if len(s.Plan.Refs) == 0 {
			r.index[s] = nil
			continue
		}
		if r.JoinKeys == nil {
			r.JoinKeys = s.Plan.JoinKeys
		} else if fmt.Sprint(r.JoinKeys) != fmt.Sprint(s.Plan.JoinKeys) {
			return fmt.Errorf("%s version %d reads entities keyed by %v, the version served with it by %v",
				s.Name, s.Version, s.Plan.JoinKeys, r.JoinKeys)
		}
		idx := make([]int, len(s.Plan.Refs))
		for j, ref := range s.Plan.Refs {
			k, ok := pos[ref.String()]
			if !ok {
				k = len(r.Refs)
				pos[ref.String()] = k
				r.Refs = append(r.Refs, ref)
			}
			idx[j] = k
		}
		r.index[s] = idx
	}
	return nil
}
