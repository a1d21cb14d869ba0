// Package triggers turns the three reasons to retrain — a drift event, a schedule, a request —
// into run-book decisions, and starts an execution for every run that a decision started.
package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

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
	coalesced func(run *runs.Run) // told when an event is folded into a run that already ended
	book      *runs.Book
	exec      Executor
	log       *zap.Logger
	wg        sync.WaitGroup
	ctx       context.Context // runs live as long as the service, not as the request that started them
}

// New returns an intake whose runs stop when ctx ends.
func New(ctx context.Context, book *runs.Book, exec Executor, log *zap.Logger) *Intake {
	return &Intake{book: book, exec: exec, log: log.Named("triggers"), ctx: ctx}
}

// OnCoalesced sets f to be told when a drift event is folded into a run that has ended (a run
// in progress records its coalesced events when it ends), so it can be recorded durably.
func (in *Intake) OnCoalesced(f func(run *runs.Run)) { in.coalesced = f }

// Request asks for a run of model and starts it when the book says so.
func (in *Intake) Request(model string, t runs.Trigger) (runs.Decision, error) {
	d, err := in.book.Request(model, t)
	if err != nil {
		return d, err
	}
	in.log.Info("retrain requested", zap.String("model", model), zap.String("trigger", t.Kind), zap.String("event_id", t.EventID),
		zap.String("outcome", d.Outcome), zap.String("run", d.Run.ID))
	if d.Outcome == "coalesced" && in.coalesced != nil && d.Run.Done() {
		in.coalesced(d.Run)
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
// makes redelivered and in-cooldown events no-ops). An event that cannot be read, or names a
// model without a training spec, is logged and skipped — the drift topic has no dead-letter
// topic, and retrying it would stall every later event.
func (in *Intake) DriftHandler() func(ctx context.Context, batch []kafka.Message) error {
	return func(_ context.Context, batch []kafka.Message) error {
		for _, m := range batch {
			var ev schemas.DriftEvent
			if err := json.Unmarshal(m.Value, &ev); err != nil || ev.ID == "" || ev.Model == "" {
				in.log.Warn("unreadable drift event skipped", zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset))
				continue
			}
			_, err := in.Request(ev.Model, runs.Trigger{Kind: runs.Drift, EventID: ev.ID, At: ev.DetectedAt,
				Reason: string(ev.Kind) + " drift of " + ev.Feature + " (" + ev.Method + ")"})
			if errors.Is(err, runs.ErrUnknownModel) {
				in.log.Warn("drift event for a model without a training spec skipped", zap.String("model", ev.Model), zap.String("event_id", ev.ID))
				continue
			}
			if err != nil {
				return err
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
