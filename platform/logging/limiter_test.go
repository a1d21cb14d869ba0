package logging_test

import (
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/logging"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := logging.NewLimiter(10 * time.Second).WithClock(func() time.Time { return now })
	if ok, n := l.Allow("a"); !ok || n != 0 {
		t.Fatal("the first line passes")
	}
	for range 5 {
		if ok, _ := l.Allow("a"); ok {
			t.Fatal("lines within the interval are held back")
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("keys are independent")
	}
	now = now.Add(11 * time.Second)
	if ok, n := l.Allow("a"); !ok || n != 5 {
		t.Fatalf("after the interval a line passes and says 5 were held back, got %v %d", ok, n)
	}
}
