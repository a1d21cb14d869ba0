package kafkax_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/platform/testenv"
	"github.com/flywheel-ml/flywheel/schemas"
)

// The size arithmetic is checked against the broker itself: the largest value it allows is
// written, one byte more is refused as too large.
func TestMaxMessageBytesFromTheBroker(t *testing.T) {
	cfg := testenv.Kafka(t)
	admin := kafkax.NewAdmin(cfg)
	defer admin.Close()
	topic := testenv.Unique(t, "limits")
	testenv.Topics(t, cfg, topic)
	ctx := testenv.Context(t)
	n, err := admin.MaxMessageBytes(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the dev broker says %d", n)
	if n < 1024 { // the dev broker answers DescribeConfigs; 0 would mean it was not asked
		t.Fatalf("implausible limit %d", n)
	}
	cfg.MaxMessageBytes = n
	p := kafkax.NewProducer(cfg)
	defer p.Close()
	for _, key := range [][]byte{nil, []byte("card-42"), bytes.Repeat([]byte("k"), 300)} {
		v := kafkax.MaxValueBytes(n, len(key))
		if err := p.Produce(ctx, kafkax.Message{Topic: topic, Key: key, Value: make([]byte, v)}); err != nil {
			t.Fatalf("key %d bytes, value %d bytes (the computed maximum): %v", len(key), v, err)
		}
		err := p.Produce(ctx, kafkax.Message{Topic: topic, Key: key, Value: make([]byte, v+1)})
		var we kafka.WriteErrors
		if !errors.As(err, &we) || len(we) != 1 || !errors.Is(we[0], kafka.MessageSizeTooLarge) {
			t.Fatalf("key %d bytes, value %d bytes (one over): want MessageSizeTooLarge, got %v", len(key), v+1, err)
		}
	}
}

func TestRecordBatchBytes(t *testing.T) {
	cases := []struct{ key, value, want int }{
		{0, 0, 61 + 1 + 6},             // header, record length, 6 one-byte fields
		{0, 57, 61 + 1 + 6 + 57},       // a record of 63 bytes: its length still takes one byte
		{0, 58, 61 + 2 + 6 + 58},       // 64 needs two
		{0, 64, 61 + 2 + 7 + 64},       // and so does a value of 64
		{5, 100, 61 + 2 + 7 + 5 + 100}, // record of 112 bytes
		{0, 1_000_000, 61 + 3 + 8 + 1_000_000},
		{0, 1 << 20, 61 + 4 + 9 + 1<<20}, // zigzag 2^21 takes four bytes
	}
	for _, c := range cases {
		if got := kafkax.RecordBatchBytes(c.key, c.value); got != c.want {
			t.Errorf("RecordBatchBytes(%d, %d) = %d, want %d", c.key, c.value, got, c.want)
		}
	}
	for _, max := range []int{1024, 1048576, 1048588} {
		for _, key := range []int{0, 7, 300} {
			v := kafkax.MaxValueBytes(max, key)
			if kafkax.RecordBatchBytes(key, v) > max || kafkax.RecordBatchBytes(key, v+1) <= max {
				t.Errorf("MaxValueBytes(%d, %d) = %d is not the largest value that fits", max, key, v)
			}
		}
	}
}

// A poison message as large as the broker takes is dead-lettered truncated (its quotes
// double when escaped in the record), with its reason, size and sha256, and its offset
// committed: never a dead letter that could not be written.
func TestOversizedPoisonIsDeadLetteredTruncated(t *testing.T) {
	cfg := testenv.Kafka(t)
	stream := testenv.Unique(t, "s")
	topic, dlq, group := schemas.RawTopic(stream), schemas.DLQTopic(stream), testenv.Unique(t, "g")
	testenv.Topics(t, cfg, topic, dlq)
	admin := kafkax.NewAdmin(cfg)
	defer admin.Close()
	n, err := admin.MaxMessageBytes(testenv.Context(t), "")
	if err != nil || n == 0 {
		t.Fatalf("broker limit: %d %v", n, err)
	}
	cfg.MaxMessageBytes = n
	key := []byte("k-1")
	poison := bytes.Repeat([]byte(`"`), kafkax.MaxValueBytes(n, len(key)))
	p := kafkax.NewProducer(cfg)
	defer p.Close()
	if err := p.Produce(testenv.Context(t), kafkax.Message{Topic: topic, Key: key, Value: poison}); err != nil {
		t.Fatal(err)
	}
	c := newConsumer(t, cfg, kafkax.ConsumerConfig{GroupID: group, Topics: []string{topic}, MaxAttempts: 1, RetryBackoff: time.Millisecond},
		func(context.Context, []kafka.Message) error { return errors.New("cannot parse") })
	stop := run(c)
	defer stop()
	waitFor(t, "the poison's offset committed", func() bool { return committed(t, cfg, group, topic) == 1 })

	var m kafka.Message
	for part := range 3 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: dlq, Partition: part, MaxBytes: 2 << 20})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err = r.ReadMessage(ctx)
		cancel()
		r.Close()
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	var rec schemas.DLQRecord
	if err := json.Unmarshal(m.Value, &rec); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(poison)
	prefix, _ := rec.OriginalBytes()
	if !rec.Truncated || rec.OriginalSize != len(poison) || rec.OriginalSHA256 != hex.EncodeToString(sum[:]) ||
		!strings.Contains(rec.Reasons[0], "cannot parse") || len(prefix) < n/3 || !bytes.HasPrefix(poison, prefix) ||
		string(m.Key) != "k-1" || kafkax.RecordBatchBytes(len(m.Key), len(m.Value)) > n {
		t.Fatalf("dead letter: truncated=%v size=%d sha=%s reasons=%v prefix=%d bytes value=%d bytes",
			rec.Truncated, rec.OriginalSize, rec.OriginalSHA256, rec.Reasons, len(prefix), len(m.Value))
	}
}
