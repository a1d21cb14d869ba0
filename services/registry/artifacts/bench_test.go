package artifacts_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/services/registry/artifacts"
)

// Put and Open (verified read) of a 16 MiB artifact in 128 KiB chunks against the test
// stack's NATS; Open spools to memory (SpoolMemoryBytes 32 MiB).
func BenchmarkPutOpen16MiB(b *testing.B) {
	const size = 16 << 20
	conn := testenv.NATS(b)
	bucket := testenv.Unique(b, "bench")
	s, err := artifacts.Open(testenv.Context(b), conn.JS, bucket, artifacts.Limits{SpoolMemoryBytes: 32 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.JS.DeleteObjectStore(context.Background(), bucket) })
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	ctx := testenv.Context(b)
	b.Run("put", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := s.Put(ctx, "1/r/artifacts/model.bin", bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			rc, _, err := s.Open(ctx, "1/r/artifacts/model.bin")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
}
