package kafkax

import (
	"context"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"
)

// RecordOverhead is room left for a record's framing (batch header, lengths, timestamps)
// when sizing a value to a message limit: Kafka counts the whole record batch.
const RecordOverhead = 512

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
