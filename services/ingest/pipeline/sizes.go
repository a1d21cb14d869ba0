package pipeline

import (
	"fmt"
	"time"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/validate"
)

// CodeEventTooLarge marks a rejection of an event that could never be written, whatever its
// content: with its envelope it would exceed the broker's largest message.
const CodeEventTooLarge = "event_too_large"

// tooLargeKey is the statistics rule of such rejections.
const tooLargeKey = "/: event_too_large"

// maxTimeLen is the longest RFC 3339 time the envelope holds (nanoseconds, UTC, 4-digit
// year). ingested_at is counted at this length so an event's limit does not depend on the
// trailing zeros of the clock.
var maxTimeLen = len("2006-01-02T15:04:05.999999999Z")

// WithMessageLimit makes the ingestor agree with the broker on sizes: maxMessageBytes is the
// largest record batch the broker takes (and the producer's batch limit). An event whose
// envelope would not fit is rejected as event_too_large, never retried in vain, and dead
// letters are truncated to fit. 0 means no limit of ours.
func (in *Ingestor) WithMessageLimit(maxMessageBytes int) *Ingestor {
	in.maxMessageBytes = maxMessageBytes
	return in
}

// MaxEventBytes is the largest event of s that can fit at all (0 when unlimited): the
// broker's limit less the record framing and the envelope with empty identifiers. Each
// event's own limit is smaller by the length of its event id and entity (eventLimit).
func (in *Ingestor) MaxEventBytes(s *catalog.Stream) int {
	if in.maxMessageBytes <= 0 {
		return 0
	}
	return kafkax.MaxValueBytes(in.maxMessageBytes, 0) - in.envelopeOverhead(s, validate.Event{})
}

// eventLimit is the largest raw event that, wrapped in ev's envelope and keyed by its entity,
// fits in one message.
func (in *Ingestor) eventLimit(s *catalog.Stream, ev validate.Event) int {
	return kafkax.MaxValueBytes(in.maxMessageBytes, len(ev.Entity)) - in.envelopeOverhead(s, ev)
}

// envelopeOverhead is what the envelope adds to the event's raw bytes on events.<stream>.
func (in *Ingestor) envelopeOverhead(s *catalog.Stream, ev validate.Event) int {
	var zero time.Time // formats as 20 bytes
	n := len(schemas.AppendEventJSON(make([]byte, 0, 256), &schemas.Event{Stream: s.Name, EventID: ev.ID,
		EventTime: ev.Time, Entity: ev.Entity, SchemaVersion: s.Meta.Version, IngestedAt: zero}))
	return n - len(zero.Format(time.RFC3339Nano)) + maxTimeLen
}

func (in *Ingestor) tooLarge(size, limit int) string {
	return fmt.Sprintf("/: the event is %d bytes, over its size limit of %d bytes (the broker's largest message, %d bytes, less the event's envelope and the record framing)",
		size, limit, in.maxMessageBytes)
}

// dlqLimit is the largest DLQ record value that fits in one message with key.
func (in *Ingestor) dlqLimit(key []byte) int {
	if in.maxMessageBytes <= 0 {
		return 1 << 30
	}
	return kafkax.MaxValueBytes(in.maxMessageBytes, len(key))
}
