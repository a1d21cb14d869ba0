// Package predict answers prediction requests: it picks the version for each instance, reads
// every instance's online features in one lookup, assembles the rows (supplied values win,
// absent ones take their defaults), scores them, and hands each prediction — with the values
// it used and where they came from — to the prediction log.
package predict

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-ml/flywheel/schemas"
	"github.com/flywheel-ml/flywheel/services/features/online"
	"github.com/flywheel-ml/flywheel/services/serving/model"
	"github.com/flywheel-ml/flywheel/services/serving/routing"
)

// Features reads online feature values: the features module's online reader.
type Features interface {
	Lookup(ctx context.Context, refs []online.Ref, entities []string, at time.Time) ([][]online.Value, error)
}

// Log takes predictions to publish; it must not block.
type Log interface {
	Publish(p *schemas.Prediction)
}

// Request is one call: one or many instances of one model.
type Request struct {
	Model     string
	RequestID string
	Pin       string // "champion", "challenger" or a version number; empty: routed
	Instances []model.Instance
}

// Prediction is the answer for one instance.
type Prediction struct {
	Version int
	Alias   string
	Entity  string
	Output  model.Output
}

// Result answers a request.
type Result struct {
	Model       string
	RequestID   string
	Predictions []Prediction
	// Served holds the version each prediction came from (same order), for callers that
	// need the model itself, such as the V2 front end's metadata.
	Served []*model.Served
}

// Errors a front end maps to statuses.
var (
	ErrUnknownModel = errors.New("unknown model")
	ErrNotReady     = errors.New("no version of the model is loaded yet")
	ErrStoreDown    = errors.New("the online feature store is unavailable")
)

// BadInput is an error in the request itself (400).
type BadInput struct{ Msg string }

func (e *BadInput) Error() string { return e.Msg }

// MaxInstances bounds one request.
const MaxInstances = 1000

// Service scores requests.
type Service struct {
	routes   *routing.Table
	features Features
	log      Log
	now      func() time.Time
	metrics  *metrics
	shadows  chan struct{} // bounds the shadow scorings in flight
}

// New returns the service.
func New(routes *routing.Table, features Features, log Log, now func() time.Time, reg prometheus.Registerer) *Service {
	return &Service{routes: routes, features: features, log: log, now: now, metrics: newMetrics(reg), shadows: make(chan struct{}, 64)}
}

// Routes is the routing table the service reads.
func (s *Service) Routes() *routing.Table { return s.routes }

var rowPool = sync.Pool{New: func() any { return new([]float64) }}

// Predict answers req.
func (s *Service) Predict(ctx context.Context, req *Request) (*Result, error) {
	start := s.now()
	route := s.routes.Get(req.Model)
	switch {
	case route == nil:
		return nil, fmt.Errorf("%w %q", ErrUnknownModel, req.Model)
	case !route.Ready():
		return nil, fmt.Errorf("%s: %w", req.Model, ErrNotReady)
	case len(req.Instances) == 0:
		return nil, &BadInput{Msg: "no instances to score"}
	case len(req.Instances) > MaxInstances:
		return nil, &BadInput{Msg: fmt.Sprintf("%d instances; the limit is %d per request", len(req.Instances), MaxInstances)}
	}
	n := len(req.Instances)
	entities := make([]string, n)
	served := make([]*model.Served, n)
	aliases := make([]string, n)
	for i, in := range req.Instances {
		e, err := in.Entity(route.JoinKeys)
		if err != nil {
			return nil, &BadInput{Msg: instanceMsg(n, i, err.Error())}
		}
		entities[i] = e
		if served[i], aliases[i], err = route.Pick(e, req.Pin); err != nil {
			return nil, err
		}
	}
	var fetched [][]online.Value
	if len(route.Refs) > 0 {
		var err error
		fetched, err = s.features.Lookup(ctx, route.Refs, entities, start)
		if err != nil {
			if !route.Policy.AllowDefaults {
				s.metrics.storeErrors.WithLabelValues(req.Model, "refused").Inc()
				return nil, fmt.Errorf("%w: %w", ErrStoreDown, err)
			}
			s.metrics.storeErrors.WithLabelValues(req.Model, "defaults").Inc()
			fetched = nil
		}
	}
	res := &Result{Model: req.Model, RequestID: req.RequestID, Predictions: make([]Prediction, n), Served: served}
	records := make([]*schemas.Prediction, n)
	rowp := rowPool.Get().(*[]float64)
	defer rowPool.Put(rowp)
	for i, in := range req.Instances {
		sv := served[i]
		row := growRow(rowp, len(sv.Plan.Columns))
		used := &model.Used{Values: make(map[string]any, len(row)), Sources: make(map[string]string, len(row))}
		var values []online.Value
		if fetched != nil {
			values = fetched[i]
		}
		if err := sv.Plan.Assemble(in, values, route.RefIndex(sv), row, used); err != nil {
			return nil, &BadInput{Msg: instanceMsg(n, i, err.Error())}
		}
		out := sv.Predict(row)
		res.Predictions[i] = Prediction{Version: sv.Version, Alias: aliases[i], Entity: entities[i], Output: out}
		records[i] = s.record(req, i, sv, aliases[i], entities[i], in, used, out, false, start)
		s.metrics.count(req.Model, sv, aliases[i], used)
		if sh := route.Shadow(sv); sh != nil {
			s.shadow(req, i, sh, route, in, entities[i], values, start)
		}
	}
	latency := s.now().Sub(start)
	for _, r := range records {
		r.LatencyUS = latency.Microseconds()
		s.log.Publish(r)
	}
	s.metrics.latency.WithLabelValues(req.Model).Observe(latency.Seconds())
	return res, nil
}

// shadow scores instance i with the challenger off the request's path; when too many are in
// flight it is skipped (and counted), never waited for.
func (s *Service) shadow(req *Request, i int, sv *model.Served, route *routing.Route, in model.Instance, entity string, values []online.Value, at time.Time) {
	select {
	case s.shadows <- struct{}{}:
	default:
		s.metrics.shadowSkipped.WithLabelValues(req.Model).Inc()
		return
	}
	go func() {
		defer func() { <-s.shadows }()
		start := s.now()
		row := make([]float64, len(sv.Plan.Columns))
		used := &model.Used{Values: make(map[string]any, len(row)), Sources: make(map[string]string, len(row))}
		if err := sv.Plan.Assemble(in, values, route.RefIndex(sv), row, used); err != nil {
			s.metrics.shadowSkipped.WithLabelValues(req.Model).Inc()
			return
		}
		out := sv.Predict(row)
		r := s.record(req, i, sv, routing.Challenger, entity, in, used, out, true, at)
		r.LatencyUS = s.now().Sub(start).Microseconds()
		s.log.Publish(r)
		s.metrics.count(req.Model, sv, "shadow", used)
	}()
}

// record is the log record of one prediction; at is when its features were read.
func (s *Service) record(req *Request, i int, sv *model.Served, alias, entity string, in model.Instance, used *model.Used, out model.Output, shadow bool, at time.Time) *schemas.Prediction {
	id := req.RequestID
	if len(req.Instances) > 1 {
		id += "/" + strconv.Itoa(i)
	}
	if shadow {
		id += "#shadow"
	}
	output, _ := json.Marshal(out)
	return &schemas.Prediction{RequestID: id, Model: sv.Name, Version: sv.Version, Alias: alias, Entity: entity,
		Features: used.Values, Sources: used.Sources, Request: in.Fields, Output: output, Score: out.Score,
		Shadow: shadow, TS: at.UTC()}
}

func growRow(p *[]float64, n int) []float64 {
	if cap(*p) < n {
		*p = make([]float64, n)
	}
	return (*p)[:n]
}

func instanceMsg(n, i int, msg string) string {
	if n == 1 {
		return msg
	}
	return fmt.Sprintf("instance %d: %s", i, msg)
}
