package natsx_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flywheel-ml/flywheel/platform/testenv"
)

// Revision-checked updates are what the registry relies on to never lose a write.
func TestKVRevisionConflict(t *testing.T) {
	conn := testenv.NATS(t)
	ctx := testenv.Context(t)
	if err := conn.Check(ctx); err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Unique(t, "kv")
	kv, err := conn.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, History: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.JS.DeleteKeyValue(testenv.Context(t), bucket) })

	rev, err := kv.Create(ctx, "model.fraud", []byte(`{"latest":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "model.fraud", []byte(`{}`)); !errors.Is(err, jetstream.ErrKeyExists) {
		t.Fatalf("second Create must fail with ErrKeyExists, got %v", err)
	}
	next, err := kv.Update(ctx, "model.fraud", []byte(`{"latest":2}`), rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "model.fraud", []byte(`{"latest":2}`), rev); !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		t.Fatalf("stale revision must fail with ErrKeyRevisionMismatch, got %v", err)
	}
	e, err := kv.Get(ctx, "model.fraud")
	if err != nil || e.Revision() != next || string(e.Value()) != `{"latest":2}` {
		t.Fatalf("got %v %v", e, err)
	}
}
