// Package pipeline is ingest's core: it validates a batch of records of one stream, drops
// event ids already written, and publishes the new events to events.<stream> and the
// rejects, with their reasons, to dlq.<stream> — returning only once the broker acknowledged
// every output. HTTP and the raw.<stream> consumer both feed it.
package pipeline

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/ingest/catalog"
	"github.com/flywheel-ml/flywheel/services/ingest/dedupe"
	"github.com/flywheel-ml/flywheel/services/ingest/stats"
	"github.com/flywheel-ml/flywheel/services/ingest/validate"
)

// Deduper remembers written event ids; see package dedupe for the contract.
type Deduper interface {
	Claim(ctx context.Context, stream string, ids []string) ([]dedupe.State, error)
	Confirm(ctx context.Context, stream string, ids []string) error
	Release(ctx context.Context, stream string, ids []string) error
}

// Publisher writes messages and returns once the broker acknowledged all of them.
type Publisher interface {
	Produce(ctx context.Context, msgs ...kafkax.Message) error
}

// StatsRecorder counts outcomes.
type StatsRecorder interface {
	Record(stream, transport string, accepted, duplicates int, rejections []stats.Rejection)
}

// Record is one event candidate.
type Record struct {
	Raw    []byte
	Key    []byte            // kept on the DLQ record (the raw message's key)
	Source schemas.DLQSource // where it came from, for the DLQ record
	Err    error             // set when the record was refused before validation (unparseable value)
}

// Rejection explains why the record at Index was refused.
type Rejection struct {
	Index   int      `json:"index"`
	Reasons []string `json:"reasons"`
	// Code is CodeEventTooLarge for an event over its size limit (whatever its content).
	Code string `json:"code,omitempty"`
}

// Result of one batch. Accepted counts every valid event, including Duplicates (valid events
// written before): a client that retries a batch gets the same answer.
type Result struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	Rejected   int         `json:"rejected"`
	Errors     []Rejection `json:"errors"`
}

// Ingestor runs batches through validation, dedupe and publishing. Safe for concurrent use.
type Ingestor struct {
	maxMessageBytes int // 0: no limit of ours (the broker's still applies)
	validator       *validate.Validator
	dedupe          Deduper
	publisher       Publisher
	stats           StatsRecorder
	now             func() time.Time
	log             *zap.Logger
}

// New returns an ingestor.
func New(v *validate.Validator, d Deduper, p Publisher, s StatsRecorder, now func() time.Time, log *zap.Logger) *Ingestor {
	return &Ingestor{validator: v, dedupe: d, publisher: p, stats: s, now: now, log: log.Named("pipeline")}
}

type accepted struct {
	ev    validate.Event
	state dedupe.State
}

// Ingest processes records of stream arriving over transport ("http" or "kafka"). An error
// means nothing of the batch may be assumed written (some outputs may have been, which the
// idempotent sinks absorb); the caller retries or reports 503.
func (in *Ingestor) Ingest(ctx context.Context, s *catalog.Stream, transport string, records []Record) (Result, error) {
	var res Result
	var valid []accepted
	var rejectedStats []stats.Rejection
	var dlq []kafkax.Message
	receivedAt := in.now().UTC()
	seen := make(map[string]struct{}, len(records))
	var ids []string
	maxEvent := in.MaxEventBytes(s)

	for i, rec := range records {
		var reasons []string
		var keys []string
		switch {
		case rec.Err != nil:
			reasons, keys = []string{"/: " + rec.Err.Error()}, []string{"/: unparseable"}
		case in.maxMessageBytes > 0 && len(rec.Raw) > maxEvent:
			// Too large with any identifiers: not worth validating.
			reasons, keys = []string{in.tooLarge(len(rec.Raw), maxEvent)}, []string{tooLargeKey}
		default:
			ev, why := in.validator.Validate(s, rec.Raw)
			if why == nil && in.maxMessageBytes > 0 {
				if limit := in.eventLimit(s, ev); len(ev.Raw) > limit {
					reasons, keys = []string{in.tooLarge(len(ev.Raw), limit)}, []string{tooLargeKey}
					break
				}
			}
			if why == nil {
				if _, dup := seen[ev.ID]; dup {
					res.Duplicates++ // the same id twice in one batch: the first one wins
					res.Accepted++
					continue
				}
				seen[ev.ID] = struct{}{}
				valid = append(valid, accepted{ev: ev})
				ids = append(ids, ev.ID)
				continue
			}
			for _, r := range why {
				reasons = append(reasons, r.String())
				keys = append(keys, r.Key())
			}
		}
		rej := Rejection{Index: i, Reasons: reasons}
		if len(keys) == 1 && keys[0] == tooLargeKey {
			rej.Code = CodeEventTooLarge
		}
		res.Errors = append(res.Errors, rej)
		rejectedStats = append(rejectedStats, keys)
		msg, err := dlqMessage(s.Name, reasons, receivedAt, rec, in.dlqLimit(rec.Key))
		if err != nil {
			return Result{}, err
		}
		dlq = append(dlq, msg)
	}
	res.Rejected = len(res.Errors)

	states, err := in.dedupe.Claim(ctx, s.Name, ids)
	if err != nil {
		return Result{}, kafkax.Transient(err)
	}
	msgs := make([]kafkax.Message, 0, len(valid)+len(dlq))
	var written, fresh []string
	buf := make([]byte, 0, len(valid)*(len(s.Name)+300))
	offsets := make([]int, 0, len(valid)+1)
	for i := range valid {
		valid[i].state = states[i]
		res.Accepted++
		if states[i] == dedupe.Duplicate {
			res.Duplicates++
			continue
		}
		written = append(written, valid[i].ev.ID)
		if states[i] == dedupe.Fresh {
			fresh = append(fresh, valid[i].ev.ID)
		}
		offsets = append(offsets, len(buf))
		buf = schemas.AppendEventJSON(buf, &schemas.Event{Stream: s.Name, EventID: valid[i].ev.ID, EventTime: valid[i].ev.Time,
			Entity: valid[i].ev.Entity, SchemaVersion: s.Meta.Version, IngestedAt: receivedAt, Data: valid[i].ev.Raw})
	}
	offsets = append(offsets, len(buf))
	// Slice only after all appends: buf may have moved while it grew.
	topic := schemas.EventsTopic(s.Name)
	n := 0
	for i := range valid {
		if valid[i].state == dedupe.Duplicate {
			continue
		}
		msgs = append(msgs, kafkax.Message{Topic: topic, Key: []byte(valid[i].ev.Entity), Value: buf[offsets[n]:offsets[n+1]:offsets[n+1]]})
		n++
	}
	msgs = append(msgs, dlq...)

	if err := in.publisher.Produce(ctx, msgs...); err != nil {
		releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if rerr := in.dedupe.Release(releaseCtx, s.Name, fresh); rerr != nil {
			in.log.Warn("release dedupe claims after a failed publish", zap.String("stream", s.Name), zap.Error(rerr))
		}
		return Result{}, kafkax.Transient(fmt.Errorf("publish %d events and %d rejects of %s: %w", len(msgs)-len(dlq), len(dlq), s.Name, err))
	}
	if err := in.dedupe.Confirm(context.WithoutCancel(ctx), s.Name, written); err != nil {
		// The events are durable; an unconfirmed claim only means a later duplicate may slip
		// through, which the idempotent sinks absorb.
		in.log.Warn("confirm dedupe claims", zap.String("stream", s.Name), zap.Error(err))
	}
	in.stats.Record(s.Name, transport, res.Accepted-res.Duplicates, res.Duplicates, rejectedStats)
	return res, nil
}

func dlqMessage(stream string, reasons []string, receivedAt time.Time, rec Record, limit int) (kafkax.Message, error) {
	d := schemas.NewDLQRecord(stream, reasons, receivedAt, rec.Raw)
	src := rec.Source
	d.Source = &src
	value, err := d.EncodeWithin(limit)
	if err != nil {
		return kafkax.Message{}, fmt.Errorf("encode dlq record: %w", err)
	}
	return kafkax.Message{Topic: schemas.DLQTopic(stream), Key: rec.Key, Value: value}, nil
}
