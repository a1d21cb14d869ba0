package scenario

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/flywheel-ml/flywheel/schemas"
)

// Spec is the shipped fraud spec, changed for a world whose week is compressed into
// minutes: windowed counts (10 minutes to 24 hours) change meaning when a card pays every
// few seconds, so the demo's model reads the 7-day average and the request only, trained on
// the last 4 days of a 14-day history (full 7-day windows); a drift retrain waits for fresh
// labels; trees sized for thousands of rows.
func Spec(model, stream, labels, view string) ([]byte, error) {
	raw, err := fs.ReadFile(schemas.Models(), "fraud.yaml")
	if err != nil {
		return nil, err
	}
	s := string(raw)
	start, end := strings.Index(s, "features:\n"), strings.Index(s, "\nalgorithm:")
	if start < 0 || end < start {
		return nil, fmt.Errorf("the shipped fraud spec has no features block")
	}
	s = s[:start] + "features:\n  - " + view + ":amount_avg_7d\n" + s[end:]
	for old, repl := range map[string]string{
		"num_trees: 200":                  "num_trees: 120",
		"min_samples_leaf: 20":            "min_samples_leaf: 10",
		"  seed: 7\n":                     "  seed: 7\n  fresh_rows: 4000\n  fresh_wait: 2m\n",
		"window: 7d":                      "window: 4d",
		"name: fraud":                     "name: " + model,
		"prediction_stream: transactions": "prediction_stream: " + stream,
		"stream: fraud_labels":            "stream: " + labels,
	} {
		if !strings.Contains(s, old) {
			return nil, fmt.Errorf("the shipped fraud spec changed: %q not found", old)
		}
		s = strings.Replace(s, old, repl, 1)
	}
	return []byte(s), nil
}
