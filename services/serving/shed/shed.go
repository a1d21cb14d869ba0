// Package shed keeps serving fast under overload: at most a fixed number of requests are
// worked on at once, and one more is answered at once with 503 and Retry-After instead of
// waiting in a queue. Latency then stays bounded (in flight ÷ throughput) however high the
// offered load, and recovers the moment the load drops — there is no backlog to work off.
package shed

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flywheel-ml/flywheel/platform/httpx"
)

// Limiter bounds the requests in flight.
type Limiter struct {
	slots      chan struct{}
	retryAfter time.Duration
	shed       prometheus.Counter
}

// New returns a limiter of max requests in flight.
func New(max int, retryAfter time.Duration, reg prometheus.Registerer) *Limiter {
	l := &Limiter{slots: make(chan struct{}, max), retryAfter: retryAfter,
		shed: prometheus.NewCounter(prometheus.CounterOpts{Name: "serving_shed_total",
			Help: "Requests answered 503 at once because too many were in flight."})}
	if reg != nil {
		reg.MustRegister(l.shed, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "serving_in_flight",
			Help: "Prediction requests being worked on."}, func() float64 { return float64(len(l.slots)) }))
	}
	return l
}

// Acquire takes a slot, or reports false when none is free. Release it when done.
func (l *Limiter) Acquire() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		l.shed.Inc()
		return false
	}
}

// Release frees a slot.
func (l *Limiter) Release() { <-l.slots }

// Overloaded is the error answered to a shed request.
func (l *Limiter) Overloaded(w http.ResponseWriter) error {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(l.retryAfter.Seconds()+0.5))))
	return &httpx.Error{Status: http.StatusServiceUnavailable, Code: "overloaded",
		Message: "serving is at its limit of " + strconv.Itoa(cap(l.slots)) + " requests in flight; retry shortly"}
}

// Wrap sheds h's requests beyond the limit.
func (l *Limiter) Wrap(h httpx.HandlerFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !l.Acquire() {
			return l.Overloaded(w)
		}
		defer l.Release()
		return h(w, r)
	}
}
