package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

func open(t *testing.T) *store.Store {
	t.Helper()
	conn := testenv.NATS(t)
	prefix := testenv.Unique(t, "T") + "_"
	s, err := store.Open(testenv.Context(t), conn.JS, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		buckets, streams := store.Names(prefix)
		for _, b := range buckets {
			_ = conn.JS.DeleteKeyValue(ctx, b)
		}
		for _, st := range streams {
			_ = conn.JS.DeleteStream(ctx, st)
		}
	})
	return s
}

// 50 writers create versions of one model and move its champion alias at once: versions are
// 1..50 with no duplicate or gap, and the audit trail holds every move, each naming the
// version it replaced.
func TestConcurrentVersionsAndAliasMoves(t *testing.T) {
	s := open(t)
	ctx := testenv.Context(t)
	if _, err := s.CreateModel(ctx, store.Model{Name: "fraud"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateModel(ctx, store.Model{Name: "fraud"}); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("a second create must fail with ErrAlreadyExists, got %v", err)
	}
	const writers = 50
	versions := make([]int, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			v, err := s.CreateVersion(ctx, store.Version{Name: "fraud", Source: "runs:/r/model"})
			if err != nil {
				errs <- err
				return
			}
			versions[i] = v.Version
			if _, err := s.SetAlias(ctx, "fraud", "champion", v.Version, "trainer", "gate passed"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sort.Ints(versions)
	for i, v := range versions {
		if v != i+1 {
			t.Fatalf("versions are not 1..%d without duplicates: %v", writers, versions)
		}
	}
	m, _ := s.GetModel(ctx, "fraud")
	if m.LatestVersion != writers {
		t.Fatalf("latest version %d, want %d", m.LatestVersion, writers)
	}

	history, err := s.AliasHistory(ctx, "fraud")
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != writers {
		t.Fatalf("audit trail has %d moves, want %d", len(history), writers)
	}
	for i, mv := range history {
		want := 0
		if i > 0 {
			want = history[i-1].Version
		}
		if mv.Previous != want || mv.Actor != "trainer" || mv.Reason != "gate passed" {
			t.Fatalf("move %d: %+v, want previous %d", i, mv, want)
		}
	}
	cur, err := s.GetAlias(ctx, "fraud", "champion")
	if err != nil || cur.Version != history[writers-1].Version {
		t.Fatalf("champion is %+v, the last audited move is %+v (%v)", cur, history[writers-1], err)
	}

	back, err := s.Rollback(ctx, "fraud", "champion", "oncall", "bad canary")
	if err != nil || back.Version != cur.Previous || back.Previous != cur.Version {
		t.Fatalf("rollback: %+v %v", back, err)
	}
}

func TestAliasNeedsAnExistingVersion(t *testing.T) {
	s := open(t)
	ctx := testenv.Context(t)
	if _, err := s.CreateModel(ctx, store.Model{Name: "m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAlias(ctx, "m", "champion", 3, "a", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if _, err := s.CreateVersion(ctx, store.Version{Name: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("want ErrNotFound for an unknown model, got %v", err)
	}
	if _, err := s.Rollback(ctx, "m", "champion", "a", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("want ErrNotFound rolling back an unset alias, got %v", err)
	}
}

func TestWatchAliasesSeesMoves(t *testing.T) {
	s := open(t)
	ctx := testenv.Context(t)
	if _, err := s.CreateModel(ctx, store.Model{Name: "m"}); err != nil {
		t.Fatal(err)
	}
	v1, _ := s.CreateVersion(ctx, store.Version{Name: "m"})
	v2, _ := s.CreateVersion(ctx, store.Version{Name: "m"})
	if _, err := s.SetAlias(ctx, "m", "champion", v1.Version, "a", "first"); err != nil {
		t.Fatal(err)
	}
	w, err := s.WatchAliases(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if e := <-w.Updates(); e == nil || !strings.HasSuffix(e.Key(), ".champion") {
		t.Fatalf("want the current champion first, got %v", e)
	}
	if e := <-w.Updates(); e != nil {
		t.Fatalf("want the end-of-initial-values marker, got %v", e)
	}
	if _, err := s.SetAlias(ctx, "m", "champion", v2.Version, "a", "second"); err != nil {
		t.Fatal(err)
	}
	if e := <-w.Updates(); e == nil || !containsVersion(e.Value(), v2.Version) {
		t.Fatalf("want the move to version %d, got %v", v2.Version, e)
	}
}

func containsVersion(b []byte, v int) bool {
	var mv store.AliasMove
	return json.Unmarshal(b, &mv) == nil && mv.Version == v
}
