package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/services/features/views"
)

// fakeEpochs is an in-memory epoch store; flush empties it as a lost Redis would.
type fakeEpochs struct {
	mu     sync.Mutex
	epochs map[string]string
}

func (f *fakeEpochs) Epochs(_ context.Context, vs []*views.View) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = f.epochs[v.Name]
	}
	return out, nil
}

func (f *fakeEpochs) SetEpoch(_ context.Context, v *views.View, epoch string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epochs[v.Name] = epoch
	return nil
}

func (f *fakeEpochs) SwapEpoch(_ context.Context, v *views.View, prev, next string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.epochs[v.Name] != prev {
		return false, nil
	}
	f.epochs[v.Name] = next
	return true, nil
}

func (f *fakeEpochs) get(view string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.epochs[view]
}

func (f *fakeEpochs) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.epochs)
}

// fakeRepairer records what the guard asked of it; during repairs it runs duringRepair, which
// sees the guard's state as a lookup would.
type fakeRepairer struct {
	history      bool
	fail         error
	duringRepair func()
	repairs      []string
	forgotten    []string
	recorded     []string
}

func (f *fakeRepairer) computed(context.Context, *views.View) (bool, error) { return f.history, nil }

func (f *fakeRepairer) repair(_ context.Context, v *views.View) (BackfillReport, error) {
	f.repairs = append(f.repairs, v.Name)
	if f.duringRepair != nil {
		f.duringRepair()
	}
	if f.fail != nil {
		return BackfillReport{}, f.fail
	}
	return BackfillReport{View: v.Name, Events: 174, Entities: 3}, nil
}

func (f *fakeRepairer) forget(view string) { f.forgotten = append(f.forgotten, view) }

func (f *fakeRepairer) record(_ context.Context, v *views.View, reason string, _ time.Time, _ BackfillReport) error {
	f.recorded = append(f.recorded, v.Name+": "+reason)
	return nil
}

type guardFixture struct {
	g        *guard
	store    *fakeEpochs
	repairer *fakeRepairer
	vs       []*views.View
	rebuilds *prometheus.CounterVec
	gauge    *prometheus.GaugeVec
}

func newGuardFixture(history bool) *guardFixture {
	f := &guardFixture{store: &fakeEpochs{epochs: map[string]string{}}, repairer: &fakeRepairer{history: history},
		vs:       []*views.View{{Name: "card_activity", Version: "v1"}},
		rebuilds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rebuilds"}, []string{"view"}),
		gauge:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rebuilding"}, []string{"view"})}
	f.g = newGuard(f.store, f.repairer, f.rebuilds, f.gauge, zap.NewNop())
	n := 0
	f.g.newEpoch = func() string { n++; return fmt.Sprintf("e%d", n) }
	return f
}

func (f *guardFixture) check(t *testing.T) {
	t.Helper()
	if err := f.g.check(context.Background(), f.vs); err != nil {
		t.Fatal(err)
	}
}

func TestGuardFirstStartOnAnEmptyStoreWithoutHistoryIsNoLoss(t *testing.T) {
	f := newGuardFixture(false)
	if err := f.g.ready(); err == nil {
		t.Fatal("ready before the first check")
	}
	f.check(t)
	if len(f.repairer.repairs) != 0 {
		t.Fatalf("a first start rebuilt %v", f.repairer.repairs)
	}
	if got := f.store.get("card_activity"); got != "e1" || f.g.known("card_activity") != "e1" {
		t.Fatalf("epoch stored %q known %q, want e1", got, f.g.known("card_activity"))
	}
	if err := f.g.ready(); err != nil {
		t.Fatal(err)
	}
	f.check(t) // steady state: nothing happens
	if len(f.repairer.repairs) != 0 || f.store.get("card_activity") != "e1" {
		t.Fatal("a second check on an intact store changed something")
	}
}

func TestGuardAdoptsTheEpochItStartsOn(t *testing.T) {
	f := newGuardFixture(true)
	f.store.epochs["card_activity"] = "built-by-an-earlier-run"
	f.check(t)
	if len(f.repairer.repairs) != 0 || f.g.known("card_activity") != "built-by-an-earlier-run" {
		t.Fatalf("repairs %v, known %q", f.repairer.repairs, f.g.known("card_activity"))
	}
}

func TestGuardRebuildsAStoreLostWhileDown(t *testing.T) {
	f := newGuardFixture(true) // the offline store holds updates: the view was computed
	f.check(t)
	if len(f.repairer.repairs) != 1 || f.store.get("card_activity") != "e1" {
		t.Fatalf("repairs %v, epoch %q", f.repairer.repairs, f.store.get("card_activity"))
	}
	if !strings.Contains(f.repairer.recorded[0], "while the service was down") {
		t.Fatalf("recorded %v", f.repairer.recorded)
	}
}

func TestGuardRebuildsAFlushedStore(t *testing.T) {
	f := newGuardFixture(false)
	f.check(t)
	f.store.flush()
	f.repairer.duringRepair = func() {
		// While repairing, lookups and readiness must say so, and the store holds a pending epoch.
		if !f.g.isRebuilding("card_activity") || f.g.ready() == nil {
			t.Error("not marked rebuilding during the repair")
		}
		if got := testutil.ToFloat64(f.gauge.WithLabelValues("card_activity")); got != 1 {
			t.Errorf("rebuilding gauge %v during the repair", got)
		}
		if got := f.store.get("card_activity"); got != pendingEpoch+"e2" {
			t.Errorf("epoch during the repair %q", got)
		}
	}
	f.check(t)
	if len(f.repairer.repairs) != 1 {
		t.Fatalf("repairs %v", f.repairer.repairs)
	}
	if got := f.store.get("card_activity"); got != "e2" || f.g.known("card_activity") != "e2" {
		t.Fatalf("epoch after the repair %q, known %q; want a new one (e2)", got, f.g.known("card_activity"))
	}
	if f.g.isRebuilding("card_activity") || f.g.ready() != nil {
		t.Fatal("still rebuilding after the repair")
	}
	if got := testutil.ToFloat64(f.rebuilds.WithLabelValues("card_activity")); got != 1 {
		t.Fatalf("rebuilds counted %v", got)
	}
	if got := testutil.ToFloat64(f.gauge.WithLabelValues("card_activity")); got != 0 {
		t.Fatalf("rebuilding gauge %v after the repair", got)
	}
	if !strings.Contains(f.repairer.recorded[0], "disappeared") {
		t.Fatalf("recorded %v", f.repairer.recorded)
	}
}

func TestGuardFollowsARebuildByAnotherProcess(t *testing.T) {
	f := newGuardFixture(false)
	f.check(t)
	f.store.epochs["card_activity"] = "rebuilt-elsewhere"
	f.check(t)
	if len(f.repairer.repairs) != 0 || len(f.repairer.forgotten) != 1 || f.g.known("card_activity") != "rebuilt-elsewhere" {
		t.Fatalf("repairs %v forgotten %v known %q", f.repairer.repairs, f.repairer.forgotten, f.g.known("card_activity"))
	}
}

func TestGuardRepairsAnInterruptedRebuild(t *testing.T) {
	f := newGuardFixture(true)
	f.store.epochs["card_activity"] = pendingEpoch + "from-a-crashed-process"
	f.check(t)
	if len(f.repairer.repairs) != 1 || f.store.get("card_activity") != "e1" {
		t.Fatalf("repairs %v epoch %q", f.repairer.repairs, f.store.get("card_activity"))
	}
}

// A store lost again while it is being repaired keeps the view marked and is repaired again:
// the final epoch never vouches for a store that lost the rebuilt states.
func TestGuardLossDuringTheRepairIsRepairedAgain(t *testing.T) {
	f := newGuardFixture(false)
	f.check(t)
	f.store.flush()
	f.repairer.duringRepair = func() { f.store.flush() }
	if err := f.g.check(context.Background(), f.vs); err == nil {
		t.Fatal("a repair whose store was lost meanwhile succeeded")
	}
	if f.store.get("card_activity") != "" || !f.g.isRebuilding("card_activity") {
		t.Fatalf("epoch %q rebuilding %v", f.store.get("card_activity"), f.g.isRebuilding("card_activity"))
	}
	f.repairer.duringRepair = nil
	f.check(t)
	if len(f.repairer.repairs) != 2 || f.g.isRebuilding("card_activity") || f.store.get("card_activity") != "e3" {
		t.Fatalf("repairs %v rebuilding %v epoch %q", f.repairer.repairs, f.g.isRebuilding("card_activity"), f.store.get("card_activity"))
	}
	if got := testutil.ToFloat64(f.rebuilds.WithLabelValues("card_activity")); got != 1 {
		t.Fatalf("one loss counted as %v rebuilds", got)
	}
}

func TestGuardFailedRepairStaysMarkedAndIsRetried(t *testing.T) {
	f := newGuardFixture(false)
	f.check(t)
	f.store.flush()
	f.repairer.fail = errors.New("clickhouse down")
	if err := f.g.check(context.Background(), f.vs); err == nil {
		t.Fatal("a failed repair passed the check")
	}
	if !f.g.isRebuilding("card_activity") {
		t.Fatal("a failed repair unmarked the view: lookups would serve the partial state")
	}
	f.repairer.fail = nil
	f.check(t)
	if len(f.repairer.repairs) != 2 || f.g.isRebuilding("card_activity") {
		t.Fatalf("repairs %v rebuilding %v", f.repairer.repairs, f.g.isRebuilding("card_activity"))
	}
}

func TestStoreBehind(t *testing.T) {
	for _, c := range []struct {
		applied, first int64
		want           bool
	}{
		{-1, 0, false},   // nothing stored: a first start
		{-1, 500, false}, // offsets dropped by a rebuild
		{41, 42, false},  // the next offset
		{41, 10, false},  // a redelivery
		{41, 41, false},
		{41, 43, true}, // the group committed past the store
		{41, 72, true},
	} {
		if got := storeBehind(c.applied, c.first); got != c.want {
			t.Errorf("storeBehind(%d, %d) = %v, want %v", c.applied, c.first, got, c.want)
		}
	}
}
