// Package kafkax is Flywheel's Kafka runtime on segmentio/kafka-go: a keyed, batching,
// acks=all producer, topic creation at start-up, and a consumer-group loop that hands batches
// to a handler and commits offsets only after the handler succeeded, dead-lettering messages
// that keep failing.
package kafkax

import (
	"net"
	"time"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// Config is the connection shared by every service.
type Config struct {
	Brokers           []string      `env:"KAFKA_BROKERS" default:"127.0.0.1:9092" usage:"Kafka bootstrap brokers, comma-separated"`
	Partitions        int           `env:"KAFKA_PARTITIONS" default:"3" usage:"partitions of topics Flywheel creates"`
	ReplicationFactor int           `env:"KAFKA_REPLICATION_FACTOR" default:"1" usage:"replication factor of topics Flywheel creates"`
	BatchSize         int           `env:"KAFKA_PRODUCER_BATCH_SIZE" default:"1000" usage:"messages per produce request"`
	BatchTimeout      time.Duration `env:"KAFKA_PRODUCER_LINGER" default:"2ms" usage:"how long the producer waits to fill a batch"`
	DialTimeout       time.Duration `env:"KAFKA_DIAL_TIMEOUT" default:"5s" usage:"connection timeout"`
	// MaxMessageBytes is used when the brokers do not tell their limit (see Admin.MaxMessageBytes).
	MaxMessageBytes int `env:"KAFKA_MAX_MESSAGE_BYTES" default:"1048576" usage:"largest record the brokers accept when they do not say (Kafka's default message.max.bytes)"`
}

// Validate checks the broker list and sizes.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return config.Invalid("KAFKA_BROKERS", "at least one broker is needed, e.g. 127.0.0.1:9092")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return config.Invalid("KAFKA_BROKERS", "%q is not host:port", b)
		}
	}
	if c.Partitions < 1 {
		return config.Invalid("KAFKA_PARTITIONS", "must be at least 1, got %d", c.Partitions)
	}
	if c.ReplicationFactor < 1 {
		return config.Invalid("KAFKA_REPLICATION_FACTOR", "must be at least 1, got %d", c.ReplicationFactor)
	}
	if c.MaxMessageBytes < 1024 {
		return config.Invalid("KAFKA_MAX_MESSAGE_BYTES", "must be at least 1024, got %d", c.MaxMessageBytes)
	}
	if c.BatchSize < 1 {
		return config.Invalid("KAFKA_PRODUCER_BATCH_SIZE", "must be at least 1, got %d", c.BatchSize)
	}
	return nil
}
