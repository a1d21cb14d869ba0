package serving

import (
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/platform/config"
	"github.com/flywheel-ml/flywheel/services/serving/routing"
)

// Settings are serving's own knobs.
type Settings struct {
	RegistryURL   string        `env:"REGISTRY_URL" default:"http://127.0.0.1:8083" usage:"the registry's base URL (model versions and artifacts)"`
	RegistryToken string        `env:"REGISTRY_TOKEN" secret:"true" usage:"bearer token for the registry (read scope)"`
	Models        []string      `env:"MODELS" usage:"models to serve, comma-separated; empty: every model with a champion. /readyz waits for each listed one"`
	CacheDir      string        `env:"CACHE_DIR" default:".flywheel/serving-cache" usage:"local model cache: serving starts from it when the registry is unreachable"`
	ViewsDir      string        `env:"VIEWS_DIR" usage:"directory of feature view *.yaml; empty uses the shipped views"`
	RedisPrefix   string        `env:"REDIS_PREFIX" default:"fw:f:" usage:"Redis key prefix of the features service's online store"`
	Timeout       time.Duration `env:"TIMEOUT" default:"500ms" usage:"deadline of one prediction request (online lookup included)"`
	MaxInFlight   int           `env:"MAX_IN_FLIGHT" default:"0" usage:"prediction requests worked on at once; more are answered 503 at once. 0: 64 per CPU"`
	Canary        string        `env:"CANARY" usage:"challenger share of entities per model, e.g. fraud=0.1"`
	Shadow        string        `env:"SHADOW" usage:"share of requests the challenger also scores in the shadow, e.g. fraud=0.2"`
	AllowDefaults []string      `env:"ALLOW_DEFAULTS" usage:"models answered with declared defaults when the online store is down (others get 503)"`
	LogBuffer     int           `env:"LOG_BUFFER" default:"65536" usage:"predictions buffered for the predictions topic; beyond it they are dropped and counted"`
	GCPercent     int           `env:"GC_PERCENT" default:"400" usage:"the Go GC target of the process (GOGC); serving allocates per request, so a higher target trades memory for CPU under load. Ignored when GOGC is set; 0 keeps Go's 100"`
	GRPCAddr      string        `env:"GRPC_ADDR" default:"127.0.0.1:8094" usage:"address of the Open Inference Protocol gRPC server; empty: none"`
}

// Validate checks the settings.
func (s Settings) Validate() error {
	if s.RegistryURL == "" {
		return config.Invalid("REGISTRY_URL", "the registry's base URL is needed, e.g. http://127.0.0.1:8083")
	}
	if s.GCPercent < 0 {
		return config.Invalid("GC_PERCENT", "must be 0 (Go's default) or a positive percentage")
	}
	if s.LogBuffer <= 0 {
		return config.Invalid("LOG_BUFFER", "must be positive")
	}
	if _, err := s.Policies(); err != nil {
		return err
	}
	return nil
}

// Policies are the traffic policies the settings describe.
func (s Settings) Policies() (map[string]routing.Policy, error) {
	out := map[string]routing.Policy{}
	for _, f := range []struct {
		env string
		raw string
		set func(p *routing.Policy, v float64)
	}{
		{"CANARY", s.Canary, func(p *routing.Policy, v float64) { p.Canary = v }},
		{"SHADOW", s.Shadow, func(p *routing.Policy, v float64) { p.Shadow = v }},
	} {
		for _, item := range strings.Split(f.raw, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			name, val, ok := strings.Cut(item, "=")
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if !ok || name == "" || err != nil || v < 0 || v > 1 {
				return nil, config.Invalid(f.env, "%q is not model=share with a share between 0 and 1", item)
			}
			p := out[strings.TrimSpace(name)]
			f.set(&p, v)
			out[strings.TrimSpace(name)] = p
		}
	}
	for _, name := range s.AllowDefaults {
		p := out[name]
		p.AllowDefaults = true
		out[name] = p
	}
	return out, nil
}
