package config_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/flywheel-ml/flywheel/platform/config"
)

type inner struct {
	Addr    string        `env:"ADDR" default:"127.0.0.1:1" usage:"listen address"`
	Timeout time.Duration `env:"TIMEOUT" default:"2s"`
}

func (c inner) Validate() error {
	if !strings.Contains(c.Addr, ":") {
		return config.Invalid("ADDR", "%q has no port; use host:port", c.Addr)
	}
	return nil
}

type outer struct {
	Brokers  []string `env:"KAFKA_BROKERS" default:"a:1,b:2"`
	Size     int      `env:"BATCH_SIZE" default:"500"`
	Ratio    float64  `env:"RATIO" default:"0.5"`
	Debug    bool     `env:"DEBUG"`
	Password string   `env:"PASSWORD" secret:"true"`
	HTTP     inner    `prefix:"INGEST_"`
	Other    inner    `prefix:"OTHER_" defaults:"ADDR=127.0.0.1:8082"`
}

func env(m map[string]string) config.LookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadPrecedence(t *testing.T) {
	var c outer
	err := config.Load(&c, []string{"--batch-size", "7", "--ingest-addr", "0.0.0.0:9"},
		env(map[string]string{"FLYWHEEL_BATCH_SIZE": "3", "FLYWHEEL_DEBUG": "true", "FLYWHEEL_INGEST_TIMEOUT": "5s"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 7 || !c.Debug || c.HTTP.Timeout != 5*time.Second || c.HTTP.Addr != "0.0.0.0:9" || c.Ratio != 0.5 {
		t.Fatalf("unexpected config %+v", c)
	}
	if c.Other.Addr != "127.0.0.1:8082" || c.Other.Timeout != 2*time.Second {
		t.Fatalf("per-field defaults of a nested struct: %+v", c.Other)
	}
	if strings.Join(c.Brokers, ";") != "a:1;b:2" {
		t.Fatalf("brokers %v", c.Brokers)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"FLYWHEEL_BATCH_SIZE": "many"}, nil, "FLYWHEEL_BATCH_SIZE: \"many\" from environment: not an integer"},
		{map[string]string{"FLYWHEEL_INGEST_TIMEOUT": "soon"}, nil, "FLYWHEEL_INGEST_TIMEOUT"},
		{map[string]string{"FLYWHEEL_INGEST_ADDR": "localhost"}, nil, "FLYWHEEL_INGEST_ADDR: \"localhost\" has no port"},
		{nil, []string{"--debug=maybe"}, "FLYWHEEL_DEBUG"},
		{nil, []string{"stray"}, "unexpected arguments"},
	}
	for _, tc := range cases {
		var c outer
		err := config.Load(&c, tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("env %v args %v: got %v, want error containing %q", tc.env, tc.args, err, tc.want)
		}
	}
	var c outer
	err := config.Load(&c, nil, env(map[string]string{"FLYWHEEL_INGEST_ADDR": "x"}), io.Discard)
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Variable != "INGEST_ADDR" {
		t.Fatalf("want a FieldError for INGEST_ADDR, got %v", err)
	}
}

func TestDescribeMasksSecrets(t *testing.T) {
	var c outer
	if err := config.Load(&c, nil, env(map[string]string{"FLYWHEEL_PASSWORD": "hunter2"}), io.Discard); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(config.Describe(&c), " ")
	if strings.Contains(got, "hunter2") || !strings.Contains(got, "FLYWHEEL_PASSWORD=*****") {
		t.Fatalf("secret not masked: %s", got)
	}
	if !strings.Contains(got, "FLYWHEEL_INGEST_TIMEOUT=2s") {
		t.Fatalf("missing nested field: %s", got)
	}
}
