package schemas_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// checkFit asserts what every truncated record promises: it fits, it is JSON, its payload is
// the longest prefix of the original that fits, and it names the original's size and sha256.
func checkFit(t *testing.T, rec schemas.DLQRecord, original []byte, limit int) {
	t.Helper()
	out, err := rec.EncodeWithin(limit)
	if err != nil {
		t.Fatalf("limit %d: %v", limit, err)
	}
	if len(out) > limit {
		t.Fatalf("encoded %d bytes, limit %d", len(out), limit)
	}
	var got schemas.DLQRecord
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	p, err := got.OriginalBytes()
	if err != nil || !bytes.HasPrefix(original, p) {
		t.Fatalf("payload is not a prefix of the original: %v", err)
	}
	if !got.Truncated {
		if full, _ := rec.Encode(); !bytes.Equal(out, full) {
			t.Fatalf("a record that fits must be unchanged")
		}
		return
	}
	sum := sha256.Sum256(original)
	if got.OriginalSize != len(original) || got.OriginalSHA256 != hex.EncodeToString(sum[:]) || got.Stream != rec.Stream {
		t.Fatalf("truncated record lost what it was: size %d sha %s", got.OriginalSize, got.OriginalSHA256)
	}
	if got.PayloadEncoding == "utf8" && len(p) < len(original) {
		// One more character would not have fitted.
		next := len(p) + 1
		for next < len(original) && !utf8.RuneStart(original[next]) {
			next++
		}
		longer := got
		longer.Payload = string(original[:next])
		if more, _ := longer.Encode(); len(more) <= limit && len(got.Reasons) == len(rec.Reasons) {
			t.Fatalf("prefix of %d bytes is not the longest: %d bytes fit too", len(p), next)
		}
	}
}

func TestEncodeWithinEdges(t *testing.T) {
	at := time.Unix(0, 0)
	quotes := bytes.Repeat([]byte(`"`), 10_000) // every byte doubles
	checkFit(t, schemas.NewDLQRecord("s", []string{"/: bad"}, at, quotes), quotes, 4_000)
	seps := bytes.Repeat([]byte("\u2028"), 3_000) // 3 bytes become 6
	checkFit(t, schemas.NewDLQRecord("s", []string{"/: bad"}, at, seps), seps, 5_000)
	plain := bytes.Repeat([]byte("a"), 1000)
	for limit := 300; limit < 1200; limit += 37 {
		checkFit(t, schemas.NewDLQRecord("s", []string{"/: bad"}, at, plain), plain, limit)
	}
	// Reasons longer than the whole limit are cut, not an error that would retry forever.
	long := schemas.NewDLQRecord("s", []string{strings.Repeat("é", 5000), "second"}, at, plain)
	out, err := long.EncodeWithin(2000)
	if err != nil || len(out) > 2000 {
		t.Fatalf("long reasons: %d bytes, %v", len(out), err)
	}
	var got schemas.DLQRecord
	if err := json.Unmarshal(out, &got); err != nil || len(got.Reasons) != 1 || !strings.HasSuffix(got.Reasons[0], "[cut]") || !utf8.ValidString(got.Reasons[0]) {
		t.Fatalf("cut reasons: %q %v", got.Reasons, err)
	}
}

func FuzzEncodeWithin(f *testing.F) {
	f.Add([]byte(`{"a":"\"quoted\""}`), "/a: bad", 200)
	f.Add([]byte{0xff, 0xfe, 0x00, 0x01}, "/: not JSON", 180)
	f.Add([]byte("\u2028\u2029<>&\t\n"), "/x: y", 190)
	f.Fuzz(func(t *testing.T, payload []byte, reason string, limit int) {
		if limit < 0 || limit > 1<<16 {
			return
		}
		rec := schemas.NewDLQRecord("s", []string{reason}, time.Unix(0, 0), payload)
		out, err := rec.EncodeWithin(limit)
		if err != nil {
			return // only when not even the record's fixed fields fit
		}
		if len(out) > limit {
			t.Fatalf("encoded %d bytes, limit %d", len(out), limit)
		}
		var got schemas.DLQRecord
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
		p, err := got.OriginalBytes()
		if err != nil || !bytes.HasPrefix(payload, p) || (got.Truncated && got.OriginalSize != len(payload)) {
			t.Fatalf("payload %q is not a prefix of %q (%v)", p, payload, err)
		}
	})
}
