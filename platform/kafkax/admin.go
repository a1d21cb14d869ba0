package kafkax

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/flywheel-ml/flywheel/platform/retry"
)

// Admin creates topics and answers readiness checks. It owns its transport: after a broker
// restart a shared transport's first call fails with unexpected EOF (see INFRA.md).
type Admin struct {
	cfg    Config
	client *kafka.Client
	tr     *kafka.Transport
}

// NewAdmin returns an admin client for cfg's brokers.
func NewAdmin(cfg Config) *Admin {
	tr := &kafka.Transport{Dial: (&net.Dialer{Timeout: cfg.DialTimeout}).DialContext, IdleTimeout: 30 * time.Second}
	return &Admin{cfg: cfg, tr: tr, client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr}}
}

// EnsureTopics creates the topics that do not exist yet with the configured partitions and
// replication; existing topics are left as they are.
func (a *Admin) EnsureTopics(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: a.cfg.Partitions, ReplicationFactor: a.cfg.ReplicationFactor})
	}
	resp, err := a.retry(ctx, func() (*kafka.CreateTopicsResponse, error) { return a.client.CreateTopics(ctx, req) })
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			err := fmt.Errorf("create topic %s: %w", topic, terr)
			var kerr kafka.Error
			if errors.As(terr, &kerr) && !kerr.Temporary() {
				// The broker refused the request itself (too many replicas, a bad name):
				// a configuration error that waiting will not fix.
				return retry.Permanent(err)
			}
			return err
		}
	}
	return nil
}

// Check is a readiness probe: a broker answers an ApiVersions request. (Metadata requests
// would not do: kafka-go's transport answers them from its cache, so a probe built on them
// stays green while every broker is down.)
func (a *Admin) Check(ctx context.Context) error {
	if _, err := a.client.ApiVersions(ctx, &kafka.ApiVersionsRequest{}); err != nil {
		a.tr.CloseIdleConnections()
		return fmt.Errorf("kafka broker %v: %w", a.cfg.Brokers, err)
	}
	return nil
}

// Close releases the admin's connections.
func (a *Admin) Close() error {
	a.tr.CloseIdleConnections()
	return nil
}

func (a *Admin) retry(ctx context.Context, call func() (*kafka.CreateTopicsResponse, error)) (*kafka.CreateTopicsResponse, error) {
	var lastErr error
	for attempt := range 5 {
		resp, err := call()
		if err == nil {
			return resp, nil
		}
		lastErr = err
		a.tr.CloseIdleConnections()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	return nil, lastErr
}

// Topics lists the broker's topics, sorted, without internal ones.
func (a *Admin) Topics(ctx context.Context) ([]string, error) {
	resp, err := a.client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata: %w", err)
	}
	var out []string
	for _, t := range resp.Topics {
		if !t.Internal && !strings.HasPrefix(t.Name, "__") {
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// DeleteTopics removes topics; missing ones are ignored. Tests use it to clean up.
func (a *Admin) DeleteTopics(ctx context.Context, topics ...string) error {
	resp, err := a.client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", topics, err)
	}
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.UnknownTopicOrPartition) {
			return fmt.Errorf("delete topic %s: %w", topic, terr)
		}
	}
	return nil
}
