// Package triggers turns the three reasons to retrain — a drift event, a schedule, a request —
// into run-book decisions, and starts an execution for every run that a decision started.
package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/flywheel-ml/flywheel/platform/kafkax"
	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/trainer/runs"
)

// Executor carries out a run (dataset, training, evaluation, registration, gates). It
// reports progress through the book and returns when the run ended.
type Executor interface {
	Execute(ctx context.Context, run *runs.Run) error
}

// Intake requests runs and executes the ones it starts, one goroutine each; Wait lets the
// runs in flight end at shutdown.
type Intake struct {
	folded    func(ctx context.Context, run *runs.Run) error
	book      *runs.Book
	exec      Executor
	log       *zap.Logger
	wg        sync.WaitGroup
	ctx       context.Context // runs live as long as the service, not as the request that started them
	decisions *prometheus.CounterVec
}

// New returns an intake whose runs stop when ctx ends; its decisions are counted in
// flywheel_trainer_retrain_requests_total{trigger, outcome} on reg (nil: not exported).
func New(ctx context.Context, book *runs.Book, exec Executor, log *zap.Logger, reg prometheus.Registerer) *Intake {
	in := &Intake{book: book, exec: exec, log: log.Named("triggers"), ctx: ctx,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flywheel_trainer_retrain_requests_total",
			Help: "Retrain requests by trigger (manual, drift, schedule) and what they led to (started, joined, duplicate, coalesced)."},
			[]string{"trigger", "outcome"})}
	if reg != nil {
		reg.MustRegister(in.decisions)
	}
	return in
}

// OnFolded sets f to be told, synchronously, every time a drift event is folded into an
// existing run instead of starting one: joined to the run in progress, coalesced into the
// last run within the cooldown, or a duplicate of an event seen before (which may have been
// folded by an attempt whose record failed). f makes the fold durable (the run's registry
// record); until it returns nil the drift event is not done, and the drift consumer retries it.
func (in *Intake) OnFolded(f func(ctx context.Context, run *runs.Run) error) { in.folded = f }

// Request asks for a run of model and starts it when the book says so.
func (in *Intake) Request(model string, t runs.Trigger) (runs.Decision, error) {
	return in.request(in.ctx, model, t)
}

func (in *Intake) request(ctx context.Context, model string, t runs.Trigger) (runs.Decision, error) {
	d, err := in.book.Request(model, t)
	if err != nil {
		return d, err
	}
	in.decisions.WithLabelValues(t.Kind, d.Outcome).Inc()
	in.log.Info("retrain requested", zap.String("model", model), zap.String("trigger", t.Kind), zap.String("event_id", t.EventID),
		zap.String("outcome", d.Outcome), zap.String("run", d.Run.ID))
	if !d.Started && t.Kind == runs.Drift && t.EventID != "" && in.folded != nil {
		if err := in.folded(ctx, d.Run); err != nil {
			return d, fmt.Errorf("drift event %s %s into run %s: %w", t.EventID, d.Outcome, d.Run.ID, err)
		}
	}
	if d.Started {
		in.wg.Go(func() {
			if err := in.exec.Execute(in.ctx, d.Run); err != nil {
				in.log.Warn("run failed", zap.String("run", d.Run.ID), zap.String("model", model), zap.String("error", err.Error()))
			}
		})
	}
	return d, nil
}

// Wait blocks until every started run ended.
func (in *Intake) Wait() { in.wg.Wait() }

// DriftHandler consumes the drift topic: each event asks for a retrain of its model (the book
// makes redelivered and in-cooldown events no-ops, and a fold is recorded before the event is
// done). An event that cannot be read, or names a model without a training spec, is logged
// and skipped — the drift topic has no dead-letter topic, and retrying it would stall every
// later event. A fold that could not be recorded (the registry is down) fails the batch as
// transient: the consumer retries it, without committing, until the record is written; the
// events of the batch handled before it are duplicates then.
func (in *Intake) DriftHandler() func(ctx context.Context, batch []kafka.Message) error {
	return func(ctx context.Context, batch []kafka.Message) error {
		for _, m := range batch {
			var ev schemas.DriftEvent
			if err := json.Unmarshal(m.Value, &ev); err != nil || ev.ID == "" || ev.Model == "" {
				in.log.Warn("unreadable drift event skipped", zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset))
				continue
			}
			_, err := in.request(ctx, ev.Model, runs.Trigger{Kind: runs.Drift, EventID: ev.ID, At: ev.DetectedAt,
				Reason: string(ev.Kind) + " drift of " + ev.Feature + " (" + ev.Method + ")"})
			if errors.Is(err, runs.ErrUnknownModel) {
				in.log.Warn("drift event for a model without a training spec skipped", zap.String("model", ev.Model), zap.String("event_id", ev.ID))
				continue
			}
			if err != nil {
				return kafkax.Transient(err)
			}
		}
		return nil
	}
}

// Schedule asks for a retrain of each model every period (models with period 0 never),
// until ctx ends.
func (in *Intake) Schedule(ctx context.Context, periods map[string]time.Duration) error {
	var wg sync.WaitGroup
	for model, period := range periods {
		if period <= 0 {
			continue
		}
		wg.Go(func() {
			t := time.NewTicker(period)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case at := <-t.C:
					if _, err := in.Request(model, runs.Trigger{Kind: runs.Schedule, At: at}); err != nil {
						in.log.Warn("scheduled retrain not requested", zap.String("model", model), zap.String("error", err.Error()))
					}
				}
			}
		})
	}
	wg.Wait()
	return nil
}
