package schemas

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// EncodeWithin encodes the record in at most limit bytes; every DLQ writer goes through it
// with the room its message leaves. A record that fits is encoded as is. One that does not
// keeps its stream, reasons, time and source and carries the longest prefix of the payload
// that fits, with Truncated set and the original's size and sha256 — so a reject too large for
// the broker still reaches the DLQ saying why and what it was, instead of failing the write
// forever. Reasons are cut only if they alone would not fit.
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
	t.Reasons = append([]string(nil), r.Reasons...)
	best, err := t.Encode()
	if err != nil {
		return nil, err
	}
	if len(best) > limit {
		if best, err = t.fitReasons(limit); err != nil {
			return nil, err
		}
	}
	// The longest prefix that fits, by bisection: escaping makes the encoded length of a
	// prefix unknown until encoded (a quote takes 2 bytes, U+2028 six), but it never shrinks
	// as the prefix grows, and each byte of payload takes at least one.
	lo, hi := 0, limit-len(best)
	if r.PayloadEncoding != "base64" {
		hi = min(hi, len(original))
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		t.Payload = prefix(original, mid, r.PayloadEncoding)
		out, err := t.Encode()
		if err != nil {
			return nil, err
		}
		if len(out) <= limit {
			lo, best = mid, out
		} else {
			hi = mid - 1
		}
	}
	return best, nil
}

// fitReasons drops reasons from the end, then shortens the first, until the record without
// payload fits in limit.
func (t *DLQRecord) fitReasons(limit int) ([]byte, error) {
	for len(t.Reasons) > 1 {
		t.Reasons = t.Reasons[:len(t.Reasons)-1]
		if out, err := t.Encode(); err != nil || len(out) <= limit {
			return out, err
		}
	}
	first := ""
	if len(t.Reasons) == 1 {
		first = t.Reasons[0]
	}
	for n := len(first); ; n = n * 3 / 4 {
		for n > 0 && n < len(first) && !utf8.RuneStart(first[n]) {
			n--
		}
		t.Reasons = []string{first[:n] + " [cut]"}
		out, err := t.Encode()
		if err != nil || len(out) <= limit {
			return out, err
		}
		if n == 0 {
			return nil, fmt.Errorf("a dlq record of stream %s does not fit in %d bytes even without payload and reasons", t.Stream, limit)
		}
	}
}

// prefix returns at most n characters of b in the record's payload encoding: whole base64
// groups, or text cut at a character boundary.
func prefix(b []byte, n int, encoding string) string {
	if encoding == "base64" {
		return base64.StdEncoding.EncodeToString(b[:min(len(b), n/4*3)])
	}
	for n > 0 && n < len(b) && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n])
}
