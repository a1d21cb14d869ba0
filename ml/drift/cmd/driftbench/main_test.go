package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun: a small run writes both outputs with every cell filled.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	js, md := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md")
	err := run([]string{"-sizes", "500", "-windows", "40", "-trials", "6", "-cap", "4", "-ref-rows", "5000",
		"-parts", "fa,detect", "-json", js, "-md", md})
	if err != nil {
		t.Fatal(err)
	}
	var res results
	raw, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.FA) != 1 || res.FA[0].Windows != 40 || len(res.Detect) != 3 || len(res.Features) != 20 {
		t.Fatalf("cells: %d false-alarm, %d detection, %d features", len(res.FA), len(res.Detect), len(res.Features))
	}
	if res.Monitor.Resamples != 2099 || res.Monitor.PersistK != 2 || res.Monitor.PersistN != 3 {
		t.Fatalf("monitor %+v", res.Monitor)
	}
	for _, d := range res.Detect {
		if len(d.Verdict.First) != 6 || d.Verdict.Detected == 0 {
			t.Errorf("%s: %+v", d.Condition, d.Verdict)
		}
	}
	text, _ := os.ReadFile(md)
	for _, want := range []string{"**monitor**, window verdict", "KS p ≤ 0.01", "category 0.5 → 0.42"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

// TestPersistence: services/monitor/evaluate's rule — an event when the window drifted and
// at least 2 of the last 3 did.
func TestPersistence(t *testing.T) {
	p := &persistence{k: 2, n: 3}
	verdicts := []bool{true, false, true, true, false, false, true, false, false, true}
	want := []bool{false, false, true, true, false, false, false, false, false, false}
	for i, v := range verdicts {
		if got := p.observe(v); got != want[i] {
			t.Fatalf("window %d: event %v, want %v", i+1, got, want[i])
		}
	}
}

func TestSummarise(t *testing.T) {
	r := summarise([]int{1, 2, 5, 0})
	if r.Detected != 3 || r.Within3 != 2 || r.Max != 0 || r.Median != 3.5 {
		t.Fatalf("%+v", r)
	}
	if r := summarise([]int{0, 0, 1}); !math.IsInf(r.Median, 1) {
		t.Fatalf("median of mostly undetected: %v", r.Median)
	}
	if r := summarise([]int{2, 1, 3}); r.Median != 2 || r.Max != 3 || r.Within3 != 3 {
		t.Fatalf("%+v", r)
	}
}
