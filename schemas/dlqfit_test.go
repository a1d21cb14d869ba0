package schemas_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/schemas"
)

func TestDLQRecordFitsTheBrokerLimit(t *testing.T) {
	// Quotes double when escaped: an 800 KB body becomes a record far over 1 MiB.
	big := []byte(`{"note":"` + strings.Repeat(`"quoted" é`, 100_000) + `"}`)
	rec := schemas.NewDLQRecord("transactions", []string{"/note: too long"}, time.Unix(0, 0), big)
	const max = 1 << 20
	out, err := rec.EncodeWithin(max)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) > max {
		t.Fatalf("encoded %d bytes, limit %d", len(out), max)
	}
	var got schemas.DLQRecord
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(big)
	if !got.Truncated || got.OriginalSize != len(big) || got.OriginalSHA256 != hex.EncodeToString(sum[:]) || got.Reasons[0] != "/note: too long" {
		t.Fatalf("truncated record: truncated=%v size=%d sha=%s reasons=%v", got.Truncated, got.OriginalSize, got.OriginalSHA256, got.Reasons)
	}
	prefix, _ := got.OriginalBytes()
	if len(prefix) < max/4 || !bytes.HasPrefix(big, prefix) {
		t.Fatalf("payload must be a real prefix of the original, got %d bytes", len(prefix))
	}

	small := schemas.NewDLQRecord("transactions", []string{"x"}, time.Unix(0, 0), []byte(`{"a":1}`))
	plain, _ := small.Encode()
	if fit, err := small.EncodeWithin(max); err != nil || !bytes.Equal(fit, plain) {
		t.Fatalf("a record that fits is unchanged: %s %v", fit, err)
	}
	binary := schemas.NewDLQRecord("transactions", []string{"x"}, time.Unix(0, 0), bytes.Repeat([]byte{0xff}, 2000))
	fit, err := binary.EncodeWithin(1000)
	if err != nil || len(fit) > 1000 {
		t.Fatalf("base64 payload: %d bytes, %v", len(fit), err)
	}
	json.Unmarshal(fit, &got)
	if p, err := got.OriginalBytes(); err != nil || !bytes.Equal(p, bytes.Repeat([]byte{0xff}, len(p))) {
		t.Fatalf("base64 prefix must decode: %v", err)
	}
}
