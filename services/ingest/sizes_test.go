package ingest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/schemas"
)

// Sizes agree end to end: an event the broker could never take is a 413 naming the limit,
// and a rejected event whose dead letter would be over the broker's limit still reaches the
// DLQ, truncated, with its reasons, size and sha256 — never a 503 to retry in vain.
func TestSizesAgreeWithTheBroker(t *testing.T) {
	s := start(t, nil)

	// 800 KB, invalid (unknown field), quotes that double when escaped in the dead letter.
	note := strings.Repeat(`\"`, 400_000) // escaped quotes: 800 KB here, 1.6 MB once escaped again in the dead letter
	bad := `{"transaction_id":"big-1","card_id":"c-1","amount":1,"currency":"EUR","merchant_id":"m","merchant_category":"grocery","country":"DE","channel":"pos","event_time":"2026-11-20T10:00:00Z","note":"` + note + `"}`
	a := s.post(t, s.events(t), "application/json", "", []byte(bad))
	if a.status != http.StatusOK || a.body["rejected"] != 1.0 {
		t.Fatalf("an 800 KB invalid event is an ordinary rejection: %d %s", a.status, a.raw[:min(300, len(a.raw))])
	}
	dlq := readTopic(t, s.kafka, schemas.DLQTopic(s.stream), 1, 10*time.Second)
	if len(dlq) != 1 {
		t.Fatalf("want its dead letter on the DLQ, got %d records", len(dlq))
	}
	var rec schemas.DLQRecord
	if err := json.Unmarshal(dlq[0].Value, &rec); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(bad))
	prefix, _ := rec.OriginalBytes()
	if !rec.Truncated || rec.OriginalSize != len(bad) || rec.OriginalSHA256 != hex.EncodeToString(sum[:]) ||
		!bytes.HasPrefix([]byte(bad), prefix) || len(rec.Reasons) == 0 || len(dlq[0].Value) > 1<<20 {
		t.Fatalf("truncated dead letter: truncated=%v size=%d sha=%s reasons=%v value=%d bytes", rec.Truncated, rec.OriginalSize, rec.OriginalSHA256, rec.Reasons, len(dlq[0].Value))
	}

	// 1.2 MB: cannot fit in any message — 413 with the limit, whatever the content.
	huge := fmt.Sprintf(`{"transaction_id":"big-2","note":%q}`, strings.Repeat("x", 1_200_000))
	a = s.post(t, s.events(t), "application/json", "", []byte(huge))
	msg, _ := a.body["error"].(map[string]any)
	if a.status != http.StatusRequestEntityTooLarge || msg["code"] != "event_too_large" || !strings.Contains(fmt.Sprint(msg["message"]), "the limit is") {
		t.Fatalf("want 413 event_too_large naming the limit, got %d %s", a.status, a.raw)
	}
	// In a batch the oversized event is one rejection among accepted ones.
	batch := "[" + txn("ok-1", "c-1", 3) + "," + huge + "]"
	a = s.post(t, s.events(t), "application/json", "", []byte(batch))
	errs, _ := a.body["errors"].([]any)
	if a.status != http.StatusOK || a.body["accepted"] != 1.0 || len(errs) != 1 || errs[0].(map[string]any)["code"] != "event_too_large" {
		t.Fatalf("batch with one oversized event: %d %s", a.status, a.raw)
	}
}
