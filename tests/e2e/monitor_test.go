package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// monitorVars makes the monitor's windows short enough for a test, and points its alerts at
// a webhook receiver of the test's own.
func monitorVars(t *testing.T, vars map[string]string, modelsDir, viewsDir, registryAddr string) *webhook {
	hook := &webhook{ids: map[string]int{}}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	for k, v := range map[string]string{"REGISTRY_URL": "http://" + registryAddr, "MODELS_DIR": modelsDir, "VIEWS_DIR": viewsDir,
		"WINDOW": "4s", "GRACE": "1500ms", "MIN_WINDOW": "150", "TICK": "500ms", "LOOKBACK": "2m", "PERSIST_K": "2", "PERSIST_N": "3",
		"COOLDOWN": "0s", "WEBHOOKS": srv.URL, "SKEW_SAMPLE": "50", "MIN_LABELS": "1000000"} {
		vars["FLYWHEEL_MONITOR_"+k] = v
	}
	return hook
}

type webhook struct {
	mu  sync.Mutex
	ids map[string]int
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
	}
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &body)
	h.mu.Lock()
	h.ids[body.Event.ID]++
	h.mu.Unlock()
}

type driftRow struct {
	ID       string    `ch:"id"`
	Kind     string    `ch:"kind"`
	Features string    `ch:"features"`
	End      time.Time `ch:"window_end"`
}

// checkMonitorDetectsAShift sends stationary payments through serving, then payments whose
// amounts are five times larger: the monitor evaluates the windows, and a data drift event
// naming amount is published (and alerted once) only after the shift.
func checkMonitorDetectsAShift(t *testing.T, serving, model string, ch driver.Conn, hook *webhook) {
	t.Helper()
	send := func(d time.Duration, scale float64) {
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(c), uint64(scale*1000)))
				for i := 0; time.Now().Before(deadline); i++ {
					var instances []string
					for k := 0; k < 20; k++ {
						instances = append(instances, fmt.Sprintf(`{"card_id":"c-%d","amount":%.2f,"merchant_category":"grocery","channel":%q,"country":"DE"}`,
							rng.IntN(80), rng.ExpFloat64()*60*scale, []string{"pos", "ecom", "atm"}[rng.IntN(3)]))
					}
					status, _, raw, err := predictCall(serving, model, fmt.Sprintf("mon-%v-%d-%d", scale, c, i), "", `{"instances":[`+strings.Join(instances, ",")+`]}`)
					if err != nil || status != 200 {
						t.Errorf("predict: %d %s %v", status, raw, err)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}(c)
		}
		wg.Wait()
	}
	events := func() []driftRow {
		var rows []driftRow
		_ = ch.Select(context.Background(), &rows, "SELECT id, kind, features, window_end FROM drift_events FINAL WHERE model = ? ORDER BY window_end", model)
		return rows
	}
	names := func(r driftRow) string { return r.Features }
	// windows wholly inside the stationary phase (earlier checks sent made-up amounts)
	stationaryFrom := time.Now().Add(4 * time.Second)
	send(14*time.Second, 1)
	shiftAt := time.Now()
	var windows uint64
	waitUntil(t, "the stationary windows evaluated", func() bool {
		_ = ch.QueryRow(context.Background(), "SELECT count() FROM drift_metrics FINAL WHERE model = ? AND kind = 'data' AND method = 'verdict' AND window_end > ? AND window_end <= ?",
			model, stationaryFrom, shiftAt).Scan(&windows)
		return windows >= 2
	})
	for _, ev := range events() {
		if ev.Kind == "data" && strings.Contains(names(ev), `"feature":"amount"`) && ev.End.After(stationaryFrom) && !ev.End.After(shiftAt) {
			var dbg []struct {
				End     time.Time `ch:"window_end"`
				N       uint64    `ch:"n"`
				Score   float64   `ch:"score"`
				Thr     float64   `ch:"threshold"`
				Drifted uint8     `ch:"drifted"`
			}
			_ = ch.Select(context.Background(), &dbg, "SELECT window_end, n, score, threshold, drifted FROM drift_metrics FINAL WHERE model = ? AND feature = 'amount' ORDER BY window_end", model)
			t.Fatalf("a drift event names amount before the shift (stationary from %v to %v): %+v\namount by window: %+v", stationaryFrom, shiftAt, ev.End, dbg)
		}
	}
	send(14*time.Second, 5)
	var found driftRow
	waitUntil(t, "a data drift event naming amount after the shift", func() bool {
		for _, ev := range events() {
			if ev.Kind == "data" && strings.Contains(names(ev), `"feature":"amount"`) && ev.End.After(shiftAt.Add(4*time.Second)) {
				found = ev
				return true
			}
		}
		return false
	})
	waitUntil(t, "the event published and alerted once", func() bool {
		var published, alerted uint8
		err := ch.QueryRow(context.Background(), "SELECT published, alerted FROM drift_events FINAL WHERE model = ? AND id = ?", model, found.ID).Scan(&published, &alerted)
		hook.mu.Lock()
		calls := hook.ids[found.ID]
		hook.mu.Unlock()
		return err == nil && published == 1 && alerted == 1 && calls == 1
	})
	var skewRows, mismatches uint64
	_ = ch.QueryRow(context.Background(), "SELECT count(), sum(mismatches) FROM skew_checks FINAL WHERE model = ?", model).Scan(&skewRows, &mismatches)
	t.Logf("monitor: %d stationary windows, drift event %s (%s) after the shift; skew check: %d rows, %d mismatches", windows, found.ID, found.Features, skewRows, mismatches)
}
