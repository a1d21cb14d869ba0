package runindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/services/registry/store"
)

const aliasTable = "registry_alias_history"

var aliasColumns = []string{"model", "model_id", "alias", "version", "previous", "action", "actor", "reason",
	"run_id", "trigger", "event_id", "moved_at", "moved_at_ms", "revision", "audit_seq"}

// Aliases projects every alias move of the audit stream (MODEL_ALIAS_AUDIT) into
// ClickHouse's registry_alias_history, the promotion timeline dashboards read. It works as
// the runs projection does: it resumes after the highest stream sequence ClickHouse holds,
// reads the stream in order with an ordered (server-stateless) consumer, and inserts each
// batch until ClickHouse takes it — ClickHouse down only delays the rows, the stream keeps
// the moves. Every registry process projects the whole stream; a move's row is the same
// whoever writes it and however often, and collapses on the table's key.
type Aliases struct {
	js     jetstream.JetStream
	stream string
	conn   driver.Conn
	log    *zap.Logger
	progress
}

// NewAliases builds the alias history projection of the audit stream.
func NewAliases(js jetstream.JetStream, stream string, conn driver.Conn, log *zap.Logger) *Aliases {
	return &Aliases{js: js, stream: stream, conn: conn, log: log, progress: *newProgress()}
}

// WaitFor blocks until the projection includes audit stream sequence seq (at most timeout).
func (p *Aliases) WaitFor(ctx context.Context, seq uint64, timeout time.Duration) error {
	return p.wait(ctx, seq, timeout)
}

// WaitForAll blocks (at most timeout) until the projection includes every move the audit
// stream held when it was called.
func (p *Aliases) WaitForAll(ctx context.Context, timeout time.Duration) error {
	s, err := p.js.Stream(ctx, p.stream)
	if err != nil {
		return fmt.Errorf("read alias audit position: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("read alias audit position: %w", err)
	}
	return p.wait(ctx, info.State.LastSeq, timeout)
}

// Run projects until ctx ends. It returns an error (the supervisor restarts it, and it
// resumes from ClickHouse) when it cannot start or its consumer ends.
func (p *Aliases) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var start uint64
	if err := p.conn.QueryRow(ctx, "SELECT max(audit_seq) FROM "+aliasTable).Scan(&start); err != nil {
		return fmt.Errorf("read alias history position: %w", err)
	}
	stream, err := p.js.Stream(ctx, p.stream)
	if err != nil {
		return fmt.Errorf("alias audit stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("alias audit stream: %w", err)
	}
	if start > info.State.LastSeq {
		// The stream was recreated: its sequences started again, and resuming after a
		// position past its end would skip every new move. Its moves are new (new KV
		// revisions), so starting over duplicates nothing.
		p.log.Warn("the alias audit stream ends before the ClickHouse history; projecting it from its start",
			zap.Uint64("clickhouse_position", start), zap.Uint64("stream_last_seq", info.State.LastSeq))
		start = 0
	}
	p.advance(start)
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if start > 0 {
		cfg = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start + 1}
	}
	c, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("alias audit consumer: %w", err)
	}
	msgs := make(chan jetstream.Msg, maxBatch)
	cc, err := c.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(maxBatch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !errors.Is(err, jetstream.ErrNoHeartbeat) {
			p.log.Warn("alias audit consumer", zap.Error(err))
		}
	}))
	if err != nil {
		return fmt.Errorf("consume alias audit: %w", err)
	}
	defer cc.Stop()
	var lastInsert time.Time
	for {
		var first jetstream.Msg
		select {
		case <-ctx.Done():
			return nil
		case <-cc.Closed():
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("alias audit consumer closed")
		case first = <-msgs:
		}
		batch, _ := gather(ctx, msgs, first, lastInsert)
		rows, last := p.rows(batch)
		if err := insertUntilDone(ctx, p.conn, aliasTable, aliasColumns, rows, p.log); err != nil {
			return nil // shutdown; the next start resumes after what ClickHouse holds
		}
		lastInsert = time.Now()
		p.advance(last)
	}
}

// rows turns audit entries into rows and returns the highest stream sequence among them.
func (p *Aliases) rows(batch []jetstream.Msg) ([][]any, uint64) {
	rows := make([][]any, 0, len(batch))
	var last uint64
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			p.log.Error("skip alias audit entry without metadata", zap.Error(err))
			continue
		}
		seq := meta.Sequence.Stream
		last = max(last, seq)
		var mv store.AliasMove
		if err := json.Unmarshal(m.Data(), &mv); err != nil {
			p.log.Error("skip undecodable alias audit entry", zap.Uint64("seq", seq), zap.Error(err))
			continue
		}
		rows = append(rows, aliasRow(mv, seq))
	}
	return rows, last
}

// aliasRow is the registry_alias_history row of an audited move at stream sequence seq.
func aliasRow(mv store.AliasMove, seq uint64) []any {
	at := mv.At.UTC()
	return []any{mv.Model, mv.ModelID, mv.Alias, uint32(mv.Version), uint32(mv.Previous), mv.MoveAction(), mv.Actor, mv.Reason,
		mv.RunID, mv.Trigger, mv.EventID, at, at.UnixMilli(), mv.Revision, seq}
}
