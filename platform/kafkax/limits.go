package kafkax

import (
	"context"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// recordBatchHeader is the v2 record batch header (base offset 8, length 4, leader epoch 4,
// magic 1, crc 4, attributes 2, last offset delta 4, first and max timestamps 16, producer
// id 8, producer epoch 2, base sequence 4, record count 4). Brokers compare the whole batch,
// header included, with message.max.bytes.
const recordBatchHeader = 61

// kafkaGoMessageOverhead is what kafka-go adds to key and value when it checks a message
// against Writer.BatchBytes (Message.totalSize without headers): it uses the v1 message
// layout, not the v2 record the broker receives.
const kafkaGoMessageOverhead = 23

// RecordBatchBytes is the exact size of a record batch holding one uncompressed record with
// a key of keyLen bytes (a nil key counts as 0) and a value of valueLen bytes, as the broker
// measures it against its message limit.
func RecordBatchBytes(keyLen, valueLen int) int {
	key := varintLen(int64(keyLen))
	if keyLen == 0 {
		key = varintLen(-1) // a null key; an empty one takes the same single byte
	}
	// attributes, timestamp delta 0, offset delta 0, key, value, header count 0
	body := 1 + 1 + 1 + key + keyLen + varintLen(int64(valueLen)) + valueLen + 1
	return recordBatchHeader + varintLen(int64(body)) + body
}

// MaxValueBytes is the largest value that, with a key of keyLen bytes, fits alone in one
// message of maxMessageBytes: the broker takes it and kafka-go's own size check passes.
// It is negative when not even an empty value fits.
func MaxValueBytes(maxMessageBytes, keyLen int) int {
	v := maxMessageBytes - kafkaGoMessageOverhead - keyLen
	for v >= 0 && RecordBatchBytes(keyLen, v) > maxMessageBytes {
		v-- // at most a few steps: the varints shrink by a byte at most twice
	}
	return v
}

// varintLen is the length of x as a zigzag varint, the encoding of lengths in v2 records.
func varintLen(x int64) int {
	u := uint64(x<<1) ^ uint64(x>>63)
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}

// MaxMessageBytes asks the brokers for the largest record batch they accept: the topic's
// max.message.bytes when topic is given and set, else the broker's message.max.bytes. It
// returns 0 when the brokers do not say (callers then use the configured
// KAFKA_MAX_MESSAGE_BYTES).
func (a *Admin) MaxMessageBytes(ctx context.Context, topic string) (int, error) {
	meta, err := a.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return 0, fmt.Errorf("kafka metadata: %w", err)
	}
	var resources []kafka.DescribeConfigRequestResource
	if topic != "" {
		resources = append(resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic,
			ResourceName: topic, ConfigNames: []string{"max.message.bytes"}})
	}
	if len(meta.Brokers) > 0 {
		resources = append(resources, kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeBroker,
			ResourceName: strconv.Itoa(meta.Brokers[0].ID), ConfigNames: []string{"message.max.bytes"}})
	}
	resp, err := a.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: resources})
	if err != nil {
		return 0, fmt.Errorf("describe kafka configs: %w", err)
	}
	for _, want := range []string{"max.message.bytes", "message.max.bytes"} {
		for _, r := range resp.Resources {
			if r.Error != nil {
				continue
			}
			for _, e := range r.ConfigEntries {
				if e.ConfigName != want {
					continue
				}
				if n, err := strconv.Atoi(e.ConfigValue); err == nil && n > 0 {
					return n, nil
				}
			}
		}
	}
	return 0, nil
}
