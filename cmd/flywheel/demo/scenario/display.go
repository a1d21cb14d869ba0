package scenario

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/ml/metrics"
)

// display is the live progress: one block of lines redrawn in place on a terminal, or a
// line every few seconds otherwise.
type display struct {
	out     io.Writer
	live    bool
	start   time.Time
	drawn   int // lines of the block on screen
	lastLog time.Time
	current string
}

func (d *display) phase(format string, args ...any) {
	d.clear()
	d.current = fmt.Sprintf(format, args...)
	fmt.Fprintf(d.out, "[%5.1fs] %s\n", time.Since(d.start).Seconds(), d.current)
}

// status prints a transient line (overwritten on a terminal).
func (d *display) status(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if d.live {
		fmt.Fprintf(d.out, "\r\033[K%s", strings.TrimRight(line, "\n"))
		if strings.HasSuffix(line, "\n") {
			fmt.Fprintln(d.out)
		}
		return
	}
	if strings.HasSuffix(line, "\n") || time.Since(d.lastLog) > 5*time.Second {
		fmt.Fprintln(d.out, strings.TrimRight(line, "\n"))
		d.lastLog = time.Now()
	}
}

func (d *display) clear() {
	if d.live && d.drawn > 0 {
		fmt.Fprintf(d.out, "\033[%dA\033[J", d.drawn)
	}
	d.drawn = 0
}

func (d *display) done() { d.drawn = 0 }

// watch redraws the live block every second until the deadline or until stop says so.
func (d *display) watch(ctx context.Context, t *traffic, api *apiClient, cfg Config, deadline time.Time, stop func() bool) error {
	prevSent, prevAt := t.sent.Load(), time.Now()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		sent := t.sent.Load()
		rate := float64(sent-prevSent) / time.Since(prevAt).Seconds()
		prevSent, prevAt = sent, time.Now()
		records, seen := t.snapshot()
		champion := 0
		for v := range seen {
			champion = max(champion, v)
		}
		lines := []string{
			fmt.Sprintf("  phase      %s", d.current),
			fmt.Sprintf("  traffic    %.0f payments/s and predictions/s, %d scored, %d failed", rate, t.ok.Load(), t.failed.Load()),
			fmt.Sprintf("  champion   version %d answering", champion),
			fmt.Sprintf("  live AUC   %s (last 2,000 payments, against their labels)", liveAUC(records, 2000)),
			"  drift      " + latestDrift(ctx, cfg),
		}
		if cfg.View != "" && len(records) > 0 {
			lines = append(lines, "  features   "+lookupCard(ctx, api, cfg.View, t.world.cardOf(len(records))))
		}
		if d.live {
			d.clear()
			fmt.Fprintln(d.out, strings.Join(lines, "\n"))
			d.drawn = len(lines)
		} else if time.Since(d.lastLog) >= 10*time.Second {
			fmt.Fprintln(d.out, strings.Join(lines[1:], "\n"))
			d.lastLog = time.Now()
		}
		if stop() {
			return nil
		}
	}
	return nil
}

func liveAUC(records []scored, last int) string {
	if len(records) > last {
		records = records[len(records)-last:]
	}
	y, s := make([]float64, 0, len(records)), make([]float64, 0, len(records))
	for _, r := range records {
		y, s = append(y, b2f(r.fraud)), append(s, r.score)
	}
	auc := metrics.EvaluateBinary(y, s, 0.5).AUC
	if auc != auc {
		return "—"
	}
	return fmt.Sprintf("%.3f", auc)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// latestDrift is the newest drift score against its threshold, by feature.
func latestDrift(ctx context.Context, cfg Config) string {
	var rows []struct {
		Feature   string  `ch:"feature"`
		Method    string  `ch:"method"`
		Score     float64 `ch:"score"`
		Threshold float64 `ch:"threshold"`
		Drifted   uint8   `ch:"drifted"`
	}
	err := cfg.ClickHouse.Select(ctx, &rows, `SELECT feature, method, score, threshold, drifted FROM drift_metrics
		WHERE model = ? AND kind = 'data' AND feature IN ('amount', 'merchant_category') AND window_end >= now() - 60
		ORDER BY window_end DESC LIMIT 2`, cfg.Model)
	if err != nil || len(rows) == 0 {
		return "no window evaluated yet"
	}
	var parts []string
	for _, r := range rows {
		mark := ""
		if r.Drifted == 1 {
			mark = " DRIFTED"
		}
		parts = append(parts, fmt.Sprintf("%s %s %.3f / threshold %.3f%s", r.Feature, r.Method, r.Score, r.Threshold, mark))
	}
	return strings.Join(parts, "; ")
}

// lookupCard reads a card's 7-day average through the features service's lookup API (what a
// rules engine or an analyst would call), with a card no one has seen beside it.
func lookupCard(ctx context.Context, api *apiClient, view, card string) string {
	var out struct {
		Results []struct {
			Values   []any    `json:"values"`
			Statuses []string `json:"statuses"`
		} `json:"results"`
	}
	body := map[string]any{"features": []string{view + ":amount_avg_7d"}, "entities": map[string][]string{"card_id": {card, "unseen-card"}}}
	if _, err := api.do(ctx, "features", "POST", "/get-online-features", body, &out); err != nil || len(out.Results) < 2 || len(out.Results[1].Values) < 2 {
		return fmt.Sprintf("lookup failed: %v", err)
	}
	v := out.Results[1]
	return fmt.Sprintf("%s amount_avg_7d %v (%s); an unseen card %v (%s) — features service lookup", card, v.Values[0], v.Statuses[0], v.Values[1], v.Statuses[1])
}
