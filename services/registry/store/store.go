// Package store keeps the registry's state in NATS JetStream: experiments, runs, registered
// models, model versions, aliases and dataset versions in KV buckets, every write
// revision-checked, so concurrent writers never lose an update and version numbers are
// allocated without races (MLflow's MAX(version)+1 is the anti-example). Metric points go
// to a stream that the ClickHouse projection consumes; alias moves are also appended to an
// audit stream, and alias keys are watchable (serving hot-swaps on them).
package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flywheel-ml/flywheel/schemas"
)

// Errors callers branch on; the API maps them to MLflow's error codes.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	ErrInvalid       = errors.New("invalid")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Buckets and streams, prefixed per deployment (tests use their own prefix).
const (
	experimentsBucket = "EXPERIMENTS"
	runsBucket        = "RUNS"
	modelsBucket      = "MODELS"
	versionsBucket    = "MODEL_VERSIONS"
	aliasesBucket     = "MODEL_ALIASES"
	datasetsBucket    = "DATASETS"
	auditStream       = "MODEL_ALIAS_AUDIT"
	metricsStream     = "RUN_METRICS"
)

// Names lists every bucket and stream Open creates under a prefix, for operators and for
// tests that clean up.
func Names(prefix string) (buckets, streams []string) {
	for _, b := range []string{experimentsBucket, runsBucket, modelsBucket, versionsBucket, aliasesBucket, datasetsBucket} {
		buckets = append(buckets, prefix+b)
	}
	return buckets, []string{prefix + auditStream, prefix + metricsStream}
}

// Notifier is told about every committed change (after the write, never before), to publish
// it on Kafka and NATS. It returns once the event is durable (the events outbox), so an
// answered change always has its event.
type Notifier interface {
	Notify(ctx context.Context, ev schemas.RegistryEvent)
}

type nopNotifier struct{}

func (nopNotifier) Notify(context.Context, schemas.RegistryEvent) {}

// Store is the registry's state on JetStream.
type Store struct {
	js     jetstream.JetStream
	prefix string

	experiments *bucket
	runs        *bucket
	models      *bucket
	versions    *bucket
	aliases     *bucket
	datasets    *bucket
	metricsSeq  watermark
	runCache    runCache

	notify Notifier
	now    func() time.Time
}

// Option configures a Store.
type Option func(*Store)

// WithNotifier sets who hears of committed changes.
func WithNotifier(n Notifier) Option { return func(s *Store) { s.notify = n } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Open creates (or binds to) the buckets and streams under prefix and makes sure MLflow's
// Default experiment (id 0) exists.
func Open(ctx context.Context, js jetstream.JetStream, prefix string, opts ...Option) (*Store, error) {
	s := &Store{js: js, prefix: prefix, notify: nopNotifier{}, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	var err error
	for _, b := range []struct {
		dst     **bucket
		name    string
		history uint8
	}{
		{&s.experiments, experimentsBucket, 5},
		{&s.runs, runsBucket, 1},
		{&s.models, modelsBucket, 10},
		{&s.versions, versionsBucket, 10},
		{&s.aliases, aliasesBucket, 64},
		{&s.datasets, datasetsBucket, 1},
	} {
		if *b.dst, err = openBucket(ctx, js, prefix+b.name, b.history); err != nil {
			return nil, err
		}
	}
	if _, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: prefix + auditStream,
		Subjects: []string{s.auditSubject("*")}, Duplicates: 10 * time.Minute}); err != nil {
		return nil, fmt.Errorf("alias audit stream: %w", err)
	}
	// A work queue: points leave the stream once the ClickHouse projection acknowledged them.
	if _, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: prefix + metricsStream,
		Subjects: []string{s.MetricsSubject()}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		return nil, fmt.Errorf("run metrics stream: %w", err)
	}
	if err := s.ensureDefaultExperiment(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) auditSubject(modelID string) string { return s.prefix + "registry.alias." + modelID }

// MetricsSubject is the subject metric points are published on.
func (s *Store) MetricsSubject() string { return s.prefix + "registry.metrics" }

// MetricsStream is the stream holding metric points until ClickHouse has them.
func (s *Store) MetricsStream() string { return s.prefix + metricsStream }

// RunsKV is the runs bucket, which the ClickHouse projection watches.
func (s *Store) RunsKV() jetstream.KeyValue { return s.runs.kv }

// RunsWritten is the highest runs-bucket revision this process wrote.
func (s *Store) RunsWritten() uint64 { return s.runs.wrote.Load() }

func (s *Store) nowMillis() int64 { return s.now().UnixMilli() }

// AliasAuditStream is the stream holding every alias move, which the ClickHouse alias
// history projects.
func (s *Store) AliasAuditStream() string { return s.prefix + auditStream }

// newEventID returns 24 random hex digits, the id format of registry events (the outbox
// keeps an id it is given): a change that records its event's id, such as an alias move,
// gives it here.
func newEventID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newID returns 32 random hex digits, MLflow's run id format.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Prefix is the deployment prefix of the store's buckets and streams.
func (s *Store) Prefix() string { return s.prefix }
