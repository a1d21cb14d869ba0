package events_test

import (
	"context"
	"testing"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/registry/store"
)

// Changes made through the real store while no relay runs (the registry died right after
// answering) reach Kafka once a relay starts, each model's events in commit order with the
// fields consumers read today.
func TestStoreChangesReachKafkaAfterTheRelayWasDown(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Context(t)
	st, err := store.Open(ctx, f.conn.JS, f.prefix, store.WithNotifier(f.outbox))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		buckets, streams := store.Names(f.prefix)
		for _, b := range buckets {
			_ = f.conn.JS.DeleteKeyValue(context.Background(), b)
		}
		for _, s := range streams {
			_ = f.conn.JS.DeleteStream(context.Background(), s)
		}
	})
	model := testenv.Unique(t, "fraud")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = st.CreateModel(ctx, store.Model{Name: model})
	must(err)
	for range 2 {
		_, err = st.CreateVersion(ctx, store.Version{Name: model, RunID: "r-1"})
		must(err)
	}
	first, err := st.SetAlias(ctx, model, "champion", 1, "ci", "first")
	must(err)
	second, err := st.SetAlias(ctx, model, "champion", 2, "ci", "better")
	must(err)
	must(st.DeleteVersion(ctx, model, 2))

	real := kafkax.NewProducer(f.kcfg)
	t.Cleanup(func() { _ = real.Close() })
	f.relay(real)
	want := []schemas.RegistryEvent{
		{Type: schemas.RegistryModelCreated, Model: model},
		{Type: schemas.RegistryVersionCreated, Model: model, Version: 1, RunID: "r-1"},
		{Type: schemas.RegistryVersionCreated, Model: model, Version: 2, RunID: "r-1"},
		{Type: schemas.RegistryAliasMoved, Model: model, Alias: "champion", Version: 1, Actor: "ci", Reason: "first"},
		{Type: schemas.RegistryAliasMoved, Model: model, Alias: "champion", Version: 2, PreviousVersion: 1, Actor: "ci", Reason: "better"},
		{Type: schemas.RegistryAliasDeleted, Model: model, Alias: "champion", PreviousVersion: 2, Reason: "version deleted"},
		{Type: schemas.RegistryVersionDeleted, Model: model, Version: 2},
	}
	got := f.read(len(want) + 1)[model] // + the Default experiment's experiment_created
	if len(got) != len(want) {
		t.Fatalf("%d events of %s on Kafka, want %d: %+v", len(got), model, len(want), got)
	}
	// An alias move records its event's id (the alias history in ClickHouse carries it).
	if got[3].ID != first.EventID || got[4].ID != second.EventID {
		t.Fatalf("alias_moved events %s, %s; the moves recorded %s, %s", got[3].ID, got[4].ID, first.EventID, second.EventID)
	}
	ids := map[string]bool{}
	for i, ev := range got {
		if len(ev.ID) != 24 || ids[ev.ID] || ev.At.IsZero() {
			t.Fatalf("event %d: id %q (24 hex digits, unique) at %v", i, ev.ID, ev.At)
		}
		ids[ev.ID] = true
		ev.ID, ev.At = "", ev.At.Truncate(0)
		w := want[i]
		w.At = ev.At
		if ev != w {
			t.Fatalf("event %d: got %+v, want %+v", i, ev, w)
		}
	}
}
