package dataset

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/schemas/modelspec"
	"github.com/flywheel-ml/flywheel/services/features/agg"
	"github.com/flywheel-ml/flywheel/services/features/offline"
	"github.com/flywheel-ml/flywheel/services/features/views"
)

// StoreSource is the feature store's offline log in ClickHouse, read with the features
// module's own point-in-time code.
type StoreSource struct {
	conn    driver.Conn
	catalog *views.Catalog
	engines map[string]*agg.Engine
}

// NewStoreSource reads the views of catalog from conn's feature_updates table.
func NewStoreSource(conn driver.Conn, catalog *views.Catalog) *StoreSource {
	s := &StoreSource{conn: conn, catalog: catalog, engines: map[string]*agg.Engine{}}
	for _, name := range catalog.Names() {
		v, _ := catalog.Get(name)
		s.engines[name] = agg.NewEngine(v)
	}
	return s
}

// View returns the named view.
func (s *StoreSource) View(name string) (*views.View, bool) { return s.catalog.Get(name) }

// PointInTime answers rows with the view's values as of each row's time.
func (s *StoreSource) PointInTime(ctx context.Context, view string, rows []offline.Row, emit offline.Emit) error {
	e, ok := s.engines[view]
	if !ok {
		return fmt.Errorf("no feature view %q", view)
	}
	return offline.Historical(ctx, s.conn, e, rows, emit)
}

// Window is the span of prediction times a training set covers.
type Window struct{ From, To time.Time }

// LoadLogged reads, from the event log, the prediction events whose event time is in w and
// every label of the spec's label stream from w.From on (labels arrive after their events).
func LoadLogged(ctx context.Context, conn driver.Conn, spec *modelspec.Spec, w Window) (events, labels []LoggedEvent, err error) {
	events, err = readStream(ctx, conn, spec.PredictionStream, w.From, w.To)
	if err != nil {
		return nil, nil, err
	}
	labels, err = readStream(ctx, conn, spec.Label.Stream, w.From, time.Time{})
	if err != nil {
		return nil, nil, err
	}
	return events, labels, nil
}

func readStream(ctx context.Context, conn driver.Conn, stream string, from, to time.Time) ([]LoggedEvent, error) {
	// FINAL collapses replays of an event (the log is a ReplacingMergeTree on event id).
	q := `SELECT event_id, entity, event_time_ms, payload FROM events FINAL WHERE stream = ? AND event_time_ms >= ?`
	args := []any{stream, from.UnixMilli()}
	if !to.IsZero() {
		q += ` AND event_time_ms <= ?`
		args = append(args, to.UnixMilli())
	}
	rows, err := conn.Query(ctx, q+` ORDER BY event_time_ms, event_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s from the event log: %w", stream, err)
	}
	defer rows.Close()
	var out []LoggedEvent
	for rows.Next() {
		var e LoggedEvent
		var payload string
		if err := rows.Scan(&e.EventID, &e.Entity, &e.TimeMS, &payload); err != nil {
			return nil, fmt.Errorf("read %s from the event log: %w", stream, err)
		}
		e.Payload = []byte(payload)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s from the event log: %w", stream, err)
	}
	return out, nil
}

// EventLog reads training windows from the ClickHouse event log.
type EventLog struct{ Conn driver.Conn }

// Load is LoadLogged on the log's connection.
func (l EventLog) Load(ctx context.Context, spec *modelspec.Spec, w Window) (events, labels []LoggedEvent, err error) {
	return LoadLogged(ctx, l.Conn, spec, w)
}
