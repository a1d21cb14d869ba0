package shed_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flywheel-ml/flywheel/platform/httpx"
	"github.com/flywheel-ml/flywheel/services/serving/shed"
)

// Beyond the limit a request is answered 503 with Retry-After at once, and the slots are
// there again as soon as the requests in flight end.
func TestShedsBeyondTheLimitAndRecoversAtOnce(t *testing.T) {
	l := shed.New(2, 1, nil)
	hold := make(chan struct{})
	entered := make(chan struct{}, 4)
	h := l.Wrap(func(w http.ResponseWriter, r *http.Request) error {
		entered <- struct{}{}
		<-hold
		return nil
	})
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- h(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil)) }()
	}
	<-entered
	<-entered
	rec := httptest.NewRecorder()
	err := h(rec, httptest.NewRequest("POST", "/", nil))
	var he *httpx.Error
	if !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable || he.Code != "overloaded" || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("third request: %v, Retry-After %q", err, rec.Header().Get("Retry-After"))
	}
	close(hold)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := h(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil)); err != nil {
			t.Fatalf("after the load dropped: %v", err)
		}
	}
}
