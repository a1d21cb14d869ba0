package swap_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/services/serving/internal/testmodel"
	"github.com/flywheel-ml/flywheel/services/serving/model"
	"github.com/flywheel-ml/flywheel/services/serving/routing"
	"github.com/flywheel-ml/flywheel/services/serving/swap"
)

type loader struct {
	mu       sync.Mutex
	bad      map[int]bool
	slow     map[int]chan struct{}
	flaky    int // this many transient failures first
	attempts map[int]int
}

func (l *loader) Load(ctx context.Context, name string, version int) (*model.Served, error) {
	l.mu.Lock()
	l.attempts[version]++
	gate := l.slow[version]
	flaky := l.flaky > 0
	if flaky {
		l.flaky--
	}
	l.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if flaky {
		return nil, errors.New("dial tcp 127.0.0.1:8083: connection refused")
	}
	if l.bad[version] {
		return nil, &model.LoadError{Err: errors.New("artifact body: unexpected EOF (truncated or damaged?)")}
	}
	a := testmodel.Fraud(float64(version))
	plan, err := model.NewPlan(a.Signature, testmodel.ShippedViews())
	if err != nil {
		return nil, err
	}
	return model.NewServed(name, version, "d", a, plan), nil
}

func newLoader() *loader {
	return &loader{bad: map[int]bool{}, slow: map[int]chan struct{}{}, attempts: map[int]int{}}
}

func champion(table *routing.Table) int {
	r := table.Get("fraud")
	if r == nil || r.Champion == nil {
		return 0
	}
	return r.Champion.Version
}

func TestABadVersionLeavesTheOldOneServing(t *testing.T) {
	l, table := newLoader(), routing.NewTable(nil)
	m := swap.New(context.Background(), l, table, nil, zap.NewNop(), nil)
	m.Move("fraud", routing.Champion, 1)
	m.Wait()
	if champion(table) != 1 {
		t.Fatalf("champion %d, want 1", champion(table))
	}
	l.bad[2] = true
	m.Move("fraud", routing.Champion, 2)
	m.Wait()
	if champion(table) != 1 || l.attempts[2] != 1 {
		t.Fatalf("after a damaged version 2: champion %d, %d attempts (a damaged artifact is not retried)", champion(table), l.attempts[2])
	}
}

func TestRegistryOutageIsRetriedAndTheNewestMoveWins(t *testing.T) {
	l, table := newLoader(), routing.NewTable(nil)
	m := swap.New(context.Background(), l, table, nil, zap.NewNop(), nil)
	l.flaky = 2
	m.Move("fraud", routing.Champion, 1)
	m.Wait()
	if champion(table) != 1 || l.attempts[1] != 3 {
		t.Fatalf("champion %d after %d attempts, want 1 after 3", champion(table), l.attempts[1])
	}
	gate := make(chan struct{})
	l.slow[2] = gate
	m.Move("fraud", routing.Champion, 2)
	time.Sleep(20 * time.Millisecond) // version 2 is loading
	m.Move("fraud", routing.Champion, 3)
	if champion(table) != 1 {
		t.Fatalf("champion %d while loading, want 1 (the old one serves meanwhile)", champion(table))
	}
	close(gate)
	m.Wait()
	if champion(table) != 3 {
		t.Fatalf("champion %d, want 3 (the newest move)", champion(table))
	}
	m.Move("fraud", routing.Challenger, 4)
	m.Wait()
	m.Move("fraud", routing.Challenger, 0)
	m.Wait()
	if r := table.Get("fraud"); r.Challenger != nil || r.Champion.Version != 3 {
		t.Fatalf("after the challenger alias was deleted: %+v", r)
	}
	if got := m.Served("fraud"); len(got) != 1 || got[routing.Champion] != 3 {
		t.Fatalf("served %v", got)
	}
}
