package dedupe_test

import (
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/services/ingest/dedupe"
)

func TestClaimConfirmRelease(t *testing.T) {
	client, prefix := testenv.Redis(t)
	ctx := testenv.Context(t)
	s := dedupe.New(client, prefix, time.Hour)

	states, err := s.Claim(ctx, "tx", []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range states {
		if st != dedupe.Fresh {
			t.Fatalf("id %d: want fresh, got %v", i, st)
		}
	}
	// Another writer sees unconfirmed claims as unsettled: it writes too rather than risk loss.
	states, _ = s.Claim(ctx, "tx", []string{"a"})
	if states[0] != dedupe.Unsettled {
		t.Fatalf("want unsettled, got %v", states[0])
	}
	if err := s.Confirm(ctx, "tx", []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "tx", []string{"b", "c"}); err != nil {
		t.Fatal(err)
	}
	states, _ = s.Claim(ctx, "tx", []string{"a", "b", "c", "d"})
	want := []dedupe.State{dedupe.Duplicate, dedupe.Duplicate, dedupe.Fresh, dedupe.Fresh}
	for i := range want {
		if states[i] != want[i] {
			t.Fatalf("id %d: want %v, got %v (confirmed ids must survive a release)", i, want[i], states[i])
		}
	}
	// Streams are separate namespaces.
	states, _ = s.Claim(ctx, "labels", []string{"a"})
	if states[0] != dedupe.Fresh {
		t.Fatalf("ids of another stream must not collide, got %v", states[0])
	}
	ttl := client.PTTL(ctx, prefix+"tx:a").Val()
	if ttl <= 50*time.Minute || ttl > time.Hour {
		t.Fatalf("confirmed ids must live for the horizon, ttl %v", ttl)
	}
}
