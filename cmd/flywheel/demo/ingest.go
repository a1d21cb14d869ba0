package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/flywheel-ml/flywheel/platform/chx"
	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
)

// ingestOverHTTP posts one batch with a few malformed events and shows the answer.
func ingestOverHTTP(ctx context.Context, cfg Config, out io.Writer) error {
	gen := NewGenerator(uint64(time.Now().UnixNano()), "demo-http-"+cfg.Run, 50)
	var items []string
	for i := range 20 {
		tx := gen.Next(time.Now().Add(-time.Duration(20-i) * time.Minute))
		b, _ := json.Marshal(tx)
		items = append(items, string(b))
		if i%7 == 3 {
			items = append(items, Malformed(i/7, tx))
		}
	}
	body := "[" + strings.Join(items, ",") + "]"
	if !json.Valid([]byte(body)) {
		// The last malformed kind is truncated JSON, which would refuse the whole array; the
		// demo sends that one over Kafka instead.
		items = items[:len(items)-1]
		body = "[" + strings.Join(items, ",") + "]"
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, cfg.Services["ingest"]+"/v1/streams/transactions/events", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/json")
	if cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var res struct {
		Accepted, Duplicates, Rejected int
		Errors                         []struct {
			Index   int
			Reasons []string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /v1/streams/transactions/events: status %d, %v", resp.StatusCode, err)
	}
	fmt.Fprintf(out, "  POST %d events as one JSON array -> 200 accepted=%d rejected=%d\n", len(items), res.Accepted, res.Rejected)
	for _, e := range res.Errors {
		fmt.Fprintf(out, "    item %d rejected: %s\n", e.Index, strings.Join(e.Reasons, "; "))
	}
	return nil
}

// ingestOverKafka produces a stream of transactions with malformed ones to raw.transactions,
// waits for the event log in ClickHouse, then replays them to show dedupe.
func ingestOverKafka(ctx context.Context, cfg Config, out io.Writer) error {
	const valid, invalid = 2000, 25
	gen := NewGenerator(uint64(time.Now().UnixNano()), "demo-kafka-"+cfg.Run, 50)
	start := time.Now().Add(-6 * time.Hour)
	msgs := make([]kafkax.Message, 0, valid+invalid)
	for i := range valid {
		tx := gen.Next(start.Add(time.Duration(i) * 6 * time.Hour / valid))
		b, _ := json.Marshal(tx)
		msgs = append(msgs, kafkax.Message{Topic: schemas.RawTopic("transactions"), Key: []byte(tx.CardID), Value: b})
		if i%(valid/invalid) == 0 {
			bad := Malformed(i/(valid/invalid), tx)
			msgs = append(msgs, kafkax.Message{Topic: schemas.RawTopic("transactions"), Key: []byte(tx.CardID), Value: []byte(bad)})
		}
	}
	conn, err := chx.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	statsSum := func(outcome string) (uint64, error) {
		var n uint64
		err := conn.QueryRow(ctx, `SELECT sum(events) FROM ingest_stats WHERE stream = 'transactions' AND transport = 'kafka'
			AND outcome = ?`, outcome).Scan(&n)
		return n, err
	}
	baseline, err := statsSum("duplicate")
	if err != nil {
		return err
	}
	p := kafkax.NewProducer(cfg.Kafka)
	defer p.Close()
	began := time.Now()
	if err := p.Produce(ctx, msgs...); err != nil {
		return err
	}
	fmt.Fprintf(out, "  produced %d transactions (%d malformed) to raw.transactions in %v\n", len(msgs), invalid, time.Since(began).Round(time.Millisecond))

	prefix := "demo-kafka-" + cfg.Run + "-%"
	count := func() (uint64, error) {
		var n uint64
		err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM events WHERE stream = 'transactions' AND event_id LIKE ?", prefix).Scan(&n)
		return n, err
	}
	if err := waitFor(ctx, 60*time.Second, func() (bool, error) { n, err := count(); return n >= valid, err }); err != nil {
		return fmt.Errorf("event log did not reach %d rows: %w", valid, err)
	}
	fmt.Fprintf(out, "  flywheel.events holds all %d valid events of this run (%v after producing)\n", valid, time.Since(began).Round(time.Millisecond))

	sample, err := sampleDLQ(ctx, cfg.Kafka)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  a dlq.transactions record: reasons=%q payload=%.80s...\n", sample.Reasons, sample.Payload)

	if err := p.Produce(ctx, msgs...); err != nil {
		return err
	}
	err = waitFor(ctx, 30*time.Second, func() (bool, error) {
		duplicates, err := statsSum("duplicate")
		return duplicates >= baseline+valid, err
	})
	if err != nil {
		return fmt.Errorf("replay not counted as duplicates: %w", err)
	}
	n, err := count()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  replayed the same %d messages: the event log still holds %d distinct events (duplicates dropped)\n", len(msgs), n)
	return printStats(ctx, conn, out)
}

// printStats shows the last minutes of ingest_stats, as a Grafana panel would.
func printStats(ctx context.Context, conn driver.Conn, out io.Writer) error {
	rows, err := conn.Query(ctx, `SELECT transport, outcome, if(reason = '', '-', reason) AS r, sum(events) AS n
		FROM ingest_stats WHERE stream = 'transactions' AND minute >= now() - 600
		GROUP BY transport, outcome, r ORDER BY transport, outcome, n DESC`)
	if err != nil {
		return err
	}
	defer rows.Close()
	fmt.Fprintf(out, "  ingest_stats, last 10 minutes (what the Grafana panel shows):\n")
	fmt.Fprintf(out, "    %-9s %-10s %-40s %s\n", "transport", "outcome", "first reason", "events")
	for rows.Next() {
		var transport, outcome, reason string
		var n uint64
		if err := rows.Scan(&transport, &outcome, &reason, &n); err != nil {
			return err
		}
		fmt.Fprintf(out, "    %-9s %-10s %-40s %d\n", transport, outcome, reason, n)
	}
	return rows.Err()
}

func sampleDLQ(ctx context.Context, kcfg kafkax.Config) (schemas.DLQRecord, error) {
	var rec schemas.DLQRecord
	for p := range kcfg.Partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: kcfg.Brokers, Topic: schemas.DLQTopic("transactions"), Partition: p})
		_ = r.SetOffsetAt(ctx, time.Now().Add(-time.Minute))
		readCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := r.ReadMessage(readCtx)
		cancel()
		r.Close()
		if err == nil {
			return rec, json.Unmarshal(m.Value, &rec)
		}
	}
	return rec, fmt.Errorf("no recent record on %s", schemas.DLQTopic("transactions"))
}

func waitFor(ctx context.Context, limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("timed out after %v", limit)
			}
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
