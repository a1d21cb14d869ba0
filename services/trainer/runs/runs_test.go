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

// Restored runs keep how they ended, and whichever order the registry answers in, the newest
// drift run of a model holds its cooldown.
func TestRestoreKeepsTheNewestDriftRunAndFailures(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	b := runs.NewBook(map[string]time.Duration{"fraud": 10 * time.Minute}, 100, func() time.Time { return now })
	b.Restore([]runs.Past{
		{RunID: "tr-new", Model: "fraud", Trigger: runs.Trigger{Kind: runs.Drift, EventID: "d-9", At: now.Add(-2 * time.Minute)},
			Stage: runs.Failed, Error: "registry run FAILED: boom"},
		{RunID: "tr-old", Model: "fraud", Trigger: runs.Trigger{Kind: runs.Drift, EventID: "d-1", At: now.Add(-30 * time.Minute)},
			Coalesced: []string{"d-2", ""}},
	})
	if r, ok := b.Get("tr-new"); !ok || r.Stage != runs.Failed || r.Error != "registry run FAILED: boom" {
		t.Fatalf("a failed past run stays failed: %+v", r)
	}
	if r, _ := b.Get("tr-old"); r.Stage != runs.Succeeded || len(r.Coalesced) != 1 {
		t.Fatalf("a finished past run: %+v", r)
	}
	d, err := b.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-10", At: now})
	if err != nil || d.Started || d.Outcome != "coalesced" || d.Run.ID != "tr-new" {
		t.Fatalf("the cooldown is the newest drift run's, a failed one too: %+v %v", d, err)
	}
	if d, _ := b.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-2", At: now}); d.Outcome != "duplicate" || d.Run.ID != "tr-old" {
		t.Fatalf("an event coalesced before the restart is a duplicate: %+v", d)
	}
	b.Restore([]runs.Past{{RunID: "tr-new", Model: "fraud", Trigger: runs.Trigger{Kind: runs.Drift, EventID: "d-9", At: now}}})
	if r, _ := b.Get("tr-new"); r.Stage != runs.Failed || len(r.Coalesced) != 1 {
		t.Fatalf("restoring a run the book knows changes nothing: %+v", r)
	}
}

// The book forgets the oldest ended runs beyond keep even when the oldest of all is a model's
// newest drift run, which it keeps for the cooldown.
func TestEvictionSkipsTheRunHoldingTheCooldown(t *testing.T) {
	c := &clock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	b := runs.NewBook(map[string]time.Duration{"fraud": time.Hour, "churn": time.Hour}, 16, c.now)
	first, _ := b.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-1"})
	b.Update(first.Run.ID, func(r *runs.Run) { r.Stage = runs.Succeeded })
	var manual []string
	for range 40 {
		c.t = c.t.Add(time.Second)
		d, _ := b.Request("churn", runs.Trigger{Kind: runs.Manual})
		b.Update(d.Run.ID, func(r *runs.Run) { r.Stage = runs.Succeeded })
		manual = append(manual, d.Run.ID)
	}
	if _, ok := b.Get(first.Run.ID); !ok {
		t.Fatal("the run holding fraud's cooldown must be kept")
	}
	if _, ok := b.Get(manual[0]); ok {
		t.Fatal("the oldest manual runs must be forgotten beyond keep")
	}
	if _, ok := b.Get(manual[len(manual)-1]); !ok {
		t.Fatal("the newest run must be kept")
	}
	if d, _ := b.Request("fraud", runs.Trigger{Kind: runs.Drift, EventID: "d-1"}); d.Outcome != "duplicate" {
		t.Fatalf("the kept drift run still knows its event: %+v", d)
	}
}
