// Package scenario runs Flywheel's whole loop against running services, by itself: card
// payments with days of history and labels, a first fraud model trained and promoted through
// the gates, live payments scored by serving, then data drift and a new fraud pattern
// injected — and it watches the monitor detect the drift, the trainer retrain on fresh
// labelled data with the drift event as its trigger, the gates promote the new version, and
// serving switch to it without a failed request. The report is the timeline and the
// metrics before and after; Run fails naming every step of the loop that did not happen.
// `flywheel demo` and the end-to-end loop test both run it.
package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
)

// Config sizes the scenario and says where everything is.
type Config struct {
	Services      map[string]string // base URLs by service name
	Token         string            // bearer token, when auth is on
	Kafka         kafkax.Config
	ClickHouse    driver.Conn
	Model         string // trained from a spec with training.fresh_rows set
	Stream        string // the payments stream the model's spec names
	Labels        string // its label stream
	View          string // the feature view the model reads (the display looks a card up in it)
	Run           string // keeps this run's payments and cards apart from earlier runs'
	Seed          uint64
	Cards         int           // cards in the world
	History       int           // payments over the 7 days before now
	Rate          int           // live payments a second
	Baseline      time.Duration // live traffic before the drift
	LabelDelay    time.Duration // how long after a live payment its label arrives
	LoopTimeout   time.Duration // from the drift to the new champion answering, at most
	Compare       time.Duration // both versions score the same payments this long
	Out           io.Writer
	Live          bool // redraw the progress display in place (a terminal)
	Grafana       string
	AfterDrift    func() // called once the drift is injected (tests restart services here)
	ReadyTimeout  time.Duration
	TrainTimeout  time.Duration
	HistoryWindow time.Duration // how far back history goes (7 days)
}

// Run runs the scenario and returns its report; the error names what did not happen.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.HistoryWindow == 0 {
		cfg.HistoryWindow = 7 * 24 * time.Hour
	}
	rep := &Report{Model: cfg.Model, Grafana: cfg.Grafana}
	d := &display{out: cfg.Out, live: cfg.Live, start: time.Now()}
	w := newWorld(cfg.Seed, cfg.Cards, cfg.Run)
	api := &apiClient{services: cfg.Services, token: cfg.Token, http: &http.Client{Timeout: 30 * time.Second}}
	producer := kafkax.NewProducer(cfg.Kafka)
	defer producer.Close()

	d.phase("history: %d card payments over the past %s, labelled an hour after each", cfg.History, cfg.HistoryWindow)
	if err := sendHistory(ctx, cfg, w, producer); err != nil {
		return rep, fmt.Errorf("history: %w", err)
	}
	if err := waitLanded(ctx, cfg, d); err != nil {
		return rep, fmt.Errorf("history: %w", err)
	}

	d.phase("training the first %s model through the gates", cfg.Model)
	first, err := api.train(ctx, cfg.Model, cfg.TrainTimeout)
	if err != nil {
		return rep, fmt.Errorf("first model: %w", err)
	}
	rep.First = first
	if !first.Promoted {
		return rep, fmt.Errorf("first model: version %d was not promoted: %s", first.ModelVersion, first.Error)
	}
	if err := api.waitServing(ctx, cfg.Model, first.ModelVersion, cfg.ReadyTimeout); err != nil {
		return rep, err
	}

	w.newCards = true
	t := newTraffic(cfg, w, producer)
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer stopTraffic()
	trafficDone := make(chan error, 1)
	go func() { trafficDone <- t.run(trafficCtx) }()
	stop := func() error {
		stopTraffic()
		return <-trafficDone
	}

	d.phase("live payments at %d/s scored by version %d", cfg.Rate, first.ModelVersion)
	if err := d.watch(ctx, t, api, cfg, time.Now().Add(cfg.Baseline), func() bool { return false }); err != nil {
		return rep, err
	}

	rep.DriftAt = time.Now().UTC()
	w.drifted.Store(true)
	if cfg.AfterDrift != nil {
		cfg.AfterDrift()
	}
	d.phase("drift injected: amounts ×1.8, merchant mix moved, and a new fraud pattern (online gift cards)")
	deadline := rep.DriftAt.Add(cfg.LoopTimeout)
	newChampion := func() bool {
		_, seen := t.snapshot()
		for v, at := range seen {
			if v > first.ModelVersion {
				rep.SwapSeen, rep.NewVersion = at.UTC(), v
				return true
			}
		}
		return false
	}
	_ = d.watch(ctx, t, api, cfg, deadline, newChampion)
	if rep.NewVersion > 0 {
		// the old champion is no longer served: make it the challenger so that a request
		// can pin it, and score the same drifted payments with both
		if _, err := api.do(ctx, "registry", http.MethodPost, "/v1/models/"+cfg.Model+"/aliases/challenger",
			map[string]any{"version": first.ModelVersion, "reason": "demo: the old champion scores the drifted payments beside the new one"}, nil); err != nil {
			return rep, err
		}
		if err := api.waitServed(ctx, cfg.Model, first.ModelVersion, cfg.ReadyTimeout); err != nil {
			return rep, err
		}
		t.compareTo.Store(int64(first.ModelVersion))
		d.phase("version %d answers; both versions score the same payments for %s", rep.NewVersion, cfg.Compare)
		_ = d.watch(ctx, t, api, cfg, time.Now().Add(cfg.Compare), func() bool { return false })
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		return rep, fmt.Errorf("live traffic: %w", err)
	}
	d.done()
	records, _ := t.snapshot()
	rep.Sent, rep.Failed = t.sent.Load(), t.failed.Load()
	if f, ok := t.lastFailure.Load().(string); ok {
		rep.LastFailure = f
	}
	if err := rep.collect(ctx, cfg, api, records, first.ModelVersion); err != nil {
		return rep, err
	}
	rep.Print(cfg.Out)
	if missing := rep.Missing(); len(missing) > 0 {
		return rep, fmt.Errorf("the loop did not close: %s", strings.Join(missing, "; "))
	}
	return rep, nil
}

// sendHistory publishes the past payments, oldest first, and their labels.
func sendHistory(ctx context.Context, cfg Config, w *world, p *kafkax.Producer) error {
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	times := make([]time.Time, cfg.History)
	for i := range times {
		times[i] = now.Add(-time.Duration(rng.Int64N(int64(cfg.HistoryWindow - time.Minute)))).Add(-time.Minute)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var batch, resent []kafkax.Message
	for i, at := range times {
		pay := w.next(at)
		if i%500 == 0 { // every 500th payment is delivered twice
			resent = append(resent, kafkax.Message{Topic: schemas.RawTopic(cfg.Stream), Key: []byte(pay.Card), Value: []byte(pay.event())})
		}
		labelAt := at.Add(time.Hour)
		if labelAt.After(now) {
			labelAt = now
		}
		batch = append(batch, kafkax.Message{Topic: schemas.RawTopic(cfg.Stream), Key: []byte(pay.Card), Value: []byte(pay.event())},
			kafkax.Message{Topic: schemas.RawTopic(cfg.Labels), Key: []byte(pay.Card), Value: []byte(pay.label(labelAt))})
		if len(batch) >= 1000 {
			if err := p.Produce(ctx, batch...); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	// what real producers also send: payments the schema refuses (they go to the dead-letter
	// topic with the reasons) and payments sent twice (ingest keeps one)
	for i := range 25 {
		bad := fmt.Sprintf(`{"transaction_id":"bad-%s-%d","card_id":"card-00001","amount":"twelve","currency":"EUR","event_time":%q}`,
			cfg.Run, i, now.Format(time.RFC3339))
		batch = append(batch, kafkax.Message{Topic: schemas.RawTopic(cfg.Stream), Key: []byte("card-00001"), Value: []byte(bad)})
	}
	if err := p.Produce(ctx, batch...); err != nil {
		return err
	}
	return p.Produce(ctx, resent...)
}

// waitLanded waits until ingest logged the history and its labels, and the features
// service applied the payments.
func waitLanded(ctx context.Context, cfg Config, d *display) error {
	like := "tx-" + cfg.Run + "-%"
	count := func(q string, args ...any) uint64 {
		var n uint64
		_ = cfg.ClickHouse.QueryRow(ctx, q, args...).Scan(&n)
		return n
	}
	deadline := time.Now().Add(cfg.ReadyTimeout + time.Duration(cfg.History/500)*time.Second)
	for {
		events := count("SELECT count() FROM events WHERE stream = ? AND event_id LIKE ?", cfg.Stream, like)
		labels := count("SELECT count() FROM events WHERE stream = ? AND event_id LIKE ?", cfg.Labels, like)
		applied := count("SELECT count() FROM feature_updates WHERE event_id LIKE ?", like)
		d.status("  logged %d/%d payments, %d/%d labels; features applied %d", events, cfg.History, labels, cfg.History, applied)
		if events >= uint64(cfg.History) && labels >= uint64(cfg.History) && applied >= uint64(cfg.History) {
			d.status("  logged %d payments and %d labels; features applied %d\n", events, labels, applied)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s only %d of %d payments, %d labels and %d feature updates landed in ClickHouse (is ingest consuming raw.%s?)",
				cfg.ReadyTimeout, events, cfg.History, labels, applied, cfg.Stream)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
