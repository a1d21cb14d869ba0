package schemas

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// EncodeWithin encodes the record in at most limit bytes. A record that fits is encoded as is;
// one that does not keeps its reasons and source, and carries a prefix of the payload, marked
// truncated, with the original size and sha256 — so a rejected event too large for the broker
// still reaches the DLQ with why it was rejected and what it was, instead of failing the
// write forever.
func (r DLQRecord) EncodeWithin(limit int) ([]byte, error) {
	full, err := r.Encode()
	if err != nil || len(full) <= limit {
		return full, err
	}
	original, err := r.OriginalBytes()
	if err != nil {
		return nil, fmt.Errorf("dlq payload: %w", err)
	}
	sum := sha256.Sum256(original)
	t := r
	t.Truncated, t.OriginalSize, t.OriginalSHA256 = true, len(original), hex.EncodeToString(sum[:])
	t.Payload = ""
	empty, err := t.Encode()
	if err != nil {
		return nil, err
	}
	room := limit - len(empty)
	if room < 0 {
		return nil, fmt.Errorf("dlq record of %s: its reasons alone take %d bytes, more than the %d allowed", r.Stream, len(empty), limit)
	}
	// JSON escaping can grow the text (up to 6 bytes for one), so shrink until it fits.
	n := min(len(original), room)
	for {
		t.Payload = prefix(original, n, r.PayloadEncoding)
		out, err := t.Encode()
		if err != nil {
			return nil, err
		}
		if len(out) <= limit {
			return out, nil
		}
		n -= max(len(out)-limit, 1)
		if n <= 0 {
			t.Payload = ""
			return t.Encode()
		}
	}
}

// prefix returns the first n bytes of b in the record's payload encoding, cut at a rune
// boundary for text.
func prefix(b []byte, n int, encoding string) string {
	if encoding == "base64" {
		return base64.StdEncoding.EncodeToString(b[:n*3/4])
	}
	for n > 0 && !utf8.Valid(b[:n]) {
		n--
	}
	return string(b[:n])
}
