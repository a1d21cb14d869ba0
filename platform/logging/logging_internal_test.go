package logging

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Error lines carry no stack trace (zap's production default adds one); DPanic and above do.
func TestStackTracesOnlyFromDPanic(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log, err := newLogger("svc", Config{Level: "debug", Format: "json"},
		zap.WrapCore(func(zapcore.Core) zapcore.Core { return core }))
	if err != nil {
		t.Fatal(err)
	}
	log.Warn("warn")
	log.Error("error")
	log.DPanic("dpanic") // production: logged, not panicking
	entries := logs.All()
	if len(entries) != 3 {
		t.Fatalf("got %d entries", len(entries))
	}
	for _, e := range entries[:2] {
		if e.Stack != "" {
			t.Errorf("%s line has a stack trace", e.Message)
		}
	}
	if entries[2].Stack == "" {
		t.Error("a DPanic line has no stack trace")
	}
	if got := entries[0].ContextMap()["service"]; got != "svc" {
		t.Errorf("service field %v", got)
	}
}
