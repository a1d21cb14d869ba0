package runs_test

import (
	"errors"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestDriftEventsRetrainOncePerCooldown(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	b := runs.NewBook(map[string]time.Duration{"fraud": 10 * time.Minute}, 100, c.now)
	drift := func(id string) runs.Decision {
		d, err := b.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: id, At: c.t})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	first := drift("d-1")
	if !first.Started || first.Outcome != "started" {
		t.Fatalf("first drift event must start a run: %+v", first)
	}
	if d := drift("d-1"); d.Started || d.Outcome != "duplicate" || d.Run.ID != first.Run.ID {
		t.Fatalf("a redelivered event must not retrain: %+v", d)
	}
	c.t = c.t.Add(time.Minute)
	if d := drift("d-2"); d.Started || d.Outcome != "joined" || d.Run.ID != first.Run.ID {
		t.Fatalf("a drift event while the run is in progress joins it: %+v", d)
	}
	b.Update(first.Run.ID, func(r *runs.Run) { r.Stage = runs.Succeeded })
	c.t = c.t.Add(5 * time.Minute)
	if d := drift("d-3"); d.Started || d.Outcome != "coalesced" || d.Run.ID != first.Run.ID {
		t.Fatalf("a drift event inside the cooldown is coalesced: %+v", d)
	}
	got, _ := b.Get(first.Run.ID)
	if len(got.Coalesced) != 2 || got.Coalesced[0].EventID != "d-2" || got.Coalesced[1].EventID != "d-3" {
		t.Fatalf("coalesced events must be recorded on the run: %+v", got.Coalesced)
	}
	c.t = c.t.Add(5 * time.Minute)
	if d := drift("d-4"); !d.Started || d.Run.ID == first.Run.ID {
		t.Fatalf("after the cooldown a drift event retrains again: %+v", d)
	}
}

func TestManualRequestsJoinTheRunInProgress(t *testing.T) {
	c := &clock{t: time.Now()}
	b := runs.NewBook(map[string]time.Duration{"fraud": time.Minute}, 100, c.now)
	a, _ := b.Request("fraud", runs.Trigger{Kind: runs.Manual})
	j, _ := b.Request("fraud", runs.Trigger{Kind: runs.Manual})
	if !a.Started || j.Started || j.Outcome != "joined" || j.Run.ID != a.Run.ID {
		t.Fatalf("second request must join: %+v %+v", a, j)
	}
	b.Update(a.Run.ID, func(r *runs.Run) { r.Stage = runs.Failed; r.Error = "boom" })
	n, _ := b.Request("fraud", runs.Trigger{Kind: runs.Manual})
	if !n.Started || n.Run.ID == a.Run.ID {
		t.Fatalf("after the run ended a request starts a new one: %+v", n)
	}
	if _, err := b.Request("nope", runs.Trigger{Kind: runs.Manual}); !errors.Is(err, runs.ErrUnknownModel) {
		t.Fatalf("unknown model: %v", err)
	}
	if r, _ := b.Get(a.Run.ID); r.Ended.IsZero() || r.Error != "boom" {
		t.Fatalf("ended run record: %+v", r)
	}
}

// After a restart, a book restored from the registry's record still calls a redelivered
// drift event a duplicate, a coalesced one too, and still holds the cooldown.
func TestRestoredBookKeepsDuplicatesAndTheCooldown(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	b := runs.NewBook(map[string]time.Duration{"fraud": 10 * time.Minute}, 100, func() time.Time { return now })
	b.Restore([]runs.Past{{RunID: "tr-1", RegistryRunID: "r1", Model: "fraud", Trigger: runs.Trigger{Kind: runs.Drift, EventID: "d-1", At: now.Add(-5 * time.Minute)},
		Coalesced: []string{"d-2"}}})
	for _, id := range []string{"d-1", "d-2"} {
		d, err := b.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: id, At: now.Add(-4 * time.Minute)})
		if err != nil || d.Started || d.Outcome != "duplicate" || d.Run.ID != "tr-1" {
			t.Fatalf("redelivered %s after a restart: %+v %v", id, d, err)
		}
	}
	d, err := b.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-3", At: now})
	if err != nil || d.Started || d.Outcome != "coalesced" || d.Run.RegistryRunID != "r1" {
		t.Fatalf("a new event inside the cooldown after a restart: %+v %v", d, err)
	}
	d, err = b.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-4", At: now.Add(6 * time.Minute)})
	if err != nil || !d.Started {
		t.Fatalf("an event after the cooldown: %+v %v", d, err)
	}
}
