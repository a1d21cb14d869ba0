package monitor

import (
	"time"

	"github.com/flywheel-ml/flywheel/platform/config"
)

// Settings are the monitor's own knobs.
type Settings struct {
	LandingGroup  string        `env:"LANDING_GROUP" default:"flywheel-monitor-landing" usage:"consumer group that lands the predictions topic in ClickHouse"`
	LandingLatest bool          `env:"LANDING_FROM_LATEST" default:"false" usage:"a landing group with no committed offsets starts at the topic's end instead of replaying its history"`
	RegistryURL   string        `env:"REGISTRY_URL" default:"http://127.0.0.1:8083" usage:"the registry's base URL (reference profiles)"`
	RegistryToken string        `env:"REGISTRY_TOKEN" secret:"true" usage:"bearer token for the registry (read scope)"`
	ModelsDir     string        `env:"MODELS_DIR" usage:"directory of <model>.yaml training specs (label streams); empty uses the shipped ones"`
	ViewsDir      string        `env:"VIEWS_DIR" usage:"directory of feature view *.yaml (skew check); empty uses the shipped views"`
	Window        time.Duration `env:"WINDOW" default:"5m" usage:"event-time tumbling window of drift and quality"`
	WindowCount   int           `env:"WINDOW_COUNT" default:"0" usage:"count windows instead of WINDOW: a window closes at the end of the first whole second by which it holds at least this many predictions (0: time windows)"`
	Grace         time.Duration `env:"GRACE" default:"30s" usage:"how long after a window's end late predictions may still land before it is evaluated"`
	MinWindow     int           `env:"MIN_WINDOW" default:"500" usage:"no drift verdict for a window with fewer predictions"`
	Lookback      time.Duration `env:"LOOKBACK" default:"6h" usage:"how far back a (re)started monitor evaluates windows not evaluated yet"`
	PersistK      int           `env:"PERSIST_K" default:"2" usage:"a drift event needs this many drifted windows …"`
	PersistN      int           `env:"PERSIST_N" default:"3" usage:"… among the last this many"`
	Cooldown      time.Duration `env:"COOLDOWN" default:"30m" usage:"no second event of the same model and kind within this much event time"`
	Alpha         float64       `env:"ALPHA" default:"0.01" usage:"false-alarm rate per window the thresholds are calibrated to (Benjamini–Hochberg FDR across features)"`
	Webhooks      string        `env:"WEBHOOKS" usage:"alert receivers, comma-separated; slack+https://… (or hooks.slack.com) gets Slack's format, others the event as JSON"`
	Tick          time.Duration `env:"TICK" default:"10s" usage:"how often closed windows are looked for"`
	PerfRecheck   time.Duration `env:"PERF_RECHECK" default:"48h" usage:"windows this recent get quality and concept drift recomputed as labels arrive"`
	MinLabels     int           `env:"MIN_LABELS" default:"200" usage:"quality and concept drift need this many labelled predictions in a window"`
	SkewSample    int           `env:"SKEW_SAMPLE" default:"200" usage:"predictions per model version and window recomputed from the offline store (0: no skew check)"`
}

// Validate checks the settings.
func (s Settings) Validate() error {
	switch {
	case s.Window < time.Second:
		return config.Invalid("WINDOW", "must be at least 1s, got %s", s.Window)
	case s.PersistK < 1 || s.PersistN < s.PersistK:
		return config.Invalid("PERSIST_K", "need 1 ≤ PERSIST_K ≤ PERSIST_N, got %d of %d", s.PersistK, s.PersistN)
	case !(s.Alpha > 0 && s.Alpha < 0.5):
		return config.Invalid("ALPHA", "must be between 0 and 0.5, got %v", s.Alpha)
	case s.WindowCount < 0:
		return config.Invalid("WINDOW_COUNT", "must be 0 (time windows) or positive, got %d", s.WindowCount)
	case s.MinWindow < 1:
		return config.Invalid("MIN_WINDOW", "must be positive")
	}
	return nil
}
