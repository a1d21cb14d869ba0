// Command driftbench measures the drift monitor's detection quality and window throughput on
// synthetic streams (issue 11, "Measure"): 20 features — 16 numeric of varied shapes (normal,
// lognormal, bimodal, heavy-tailed, integer, zero-inflated; 4 with missing values) and 4
// categorical — against a reference profile built as the trainer builds it (ml/profile over
// a reference sample, default options, round-tripped through JSON as the registry stores
// it), scored with the monitor's own methods, calibration, Benjamini–Hochberg, floors and
// k-of-n persistence at their shipped defaults, beside the fixed-threshold rules of the
// issue's table on the same windows.
//
// It reports, per window size: the share of stationary windows with a data-drift verdict for
// the model (and the events persistence would raise from them); the windows until a 0.25σ
// mean shift, a variance change to 1.3σ and a categorical frequency shift are detected (per
// window verdict and event), over many trials; and the throughput and memory of the
// monitor's window path.
//
//	driftbench [-sizes 500,1000,10000,100000] [-windows 2000,2000,2000,1000]
//	           [-trials 200,200,200,100] [-cap 10] [-ref-rows 100000] [-seed 1] [-workers 0]
//	           [-parts fa,detect,throughput] [-json out.json] [-md out.md]
//	           [-numeric ks] [-categorical chisquare]   (alternatives to the defaults)
//
// The monitor's scoring is mirrored in monitor.go over the same ml/drift calls as
// services/monitor/detect.Detect and the persistence rule of services/monitor/evaluate (this
// module cannot import the service); a change to either belongs there too. Every window is
// drawn from its own seeded stream, so a run is reproducible whatever the worker count. `make
// bench-drift` runs the full measurement (about 10 minutes on 2 quiet cores).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/ml/drift"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "driftbench:", err)
		os.Exit(1)
	}
}

// config is what a run measures.
type config struct {
	Sizes     []int    `json:"sizes"`
	Windows   []int    `json:"stationary_windows"` // per size
	Trials    []int    `json:"trials"`             // per size and condition
	Cap       int      `json:"cap"`                // windows per detection trial at most
	RefRows   int      `json:"reference_rows"`
	Seed      uint64   `json:"seed"`
	Workers   int      `json:"workers"`
	Parts     []string `json:"parts"`
	BenchTime string   `json:"bench_time"`
	// Numeric and Categorical override the monitor's default methods (detect.Options), to
	// measure an alternative; empty: the defaults.
	Numeric     string `json:"numeric,omitempty"`
	Categorical string `json:"categorical,omitempty"`
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// perSize spreads a list over the sizes: one value for all, or one per size.
func perSize(name, s string, sizes []int) ([]int, error) {
	v, err := parseInts(s)
	if err != nil {
		return nil, fmt.Errorf("-%s: %w", name, err)
	}
	switch len(v) {
	case 1:
		out := make([]int, len(sizes))
		for i := range out {
			out[i] = v[0]
		}
		return out, nil
	case len(sizes):
		return v, nil
	}
	return nil, fmt.Errorf("-%s: %d values for %d sizes (give one, or one per size)", name, len(v), len(sizes))
}

func run(args []string) error {
	fl := flag.NewFlagSet("driftbench", flag.ContinueOnError)
	sizes := fl.String("sizes", "500,1000,10000,100000", "window sizes (predictions per window)")
	windows := fl.String("windows", "2000,2000,2000,1000", "stationary windows per size (one value, or one per size)")
	trials := fl.String("trials", "200,200,200,100", "detection trials per size and change (one value, or one per size)")
	capW := fl.Int("cap", 10, "windows per detection trial at most (later detections count as not detected)")
	refRows := fl.Int("ref-rows", 100000, "rows of the reference sample the profile is built from")
	seed := fl.Uint64("seed", 1, "seed of the reference, the streams and the profile's sample")
	workers := fl.Int("workers", 0, "goroutines scoring windows (0: GOMAXPROCS)")
	parts := fl.String("parts", "fa,detect,throughput", "what to measure: fa (false alarms), detect (windows until detection), throughput")
	benchTime := fl.Duration("bench-time", time.Second, "time per throughput benchmark")
	jsonOut := fl.String("json", "", "write the results as JSON here")
	mdOut := fl.String("md", "", "write the results as markdown here (default: stdout)")
	numeric := fl.String("numeric", "", "method for numeric features instead of the monitor's default (psi): ks, wasserstein, jensenshannon, chisquare, linf")
	categorical := fl.String("categorical", "", "method for categorical features instead of the monitor's default (linf): psi, jensenshannon, chisquare")
	cpuProfile := fl.String("cpuprofile", "", "write a CPU profile of the run here")
	if err := fl.Parse(args); err != nil {
		return err
	}
	cfg := config{Cap: *capW, RefRows: *refRows, Seed: *seed, Workers: *workers, BenchTime: benchTime.String(),
		Numeric: *numeric, Categorical: *categorical}
	var err error
	for _, m := range []string{cfg.Numeric, cfg.Categorical} {
		if m == "" {
			continue
		}
		if _, err := drift.ParseMethod(m); err != nil {
			return err
		}
	}
	if cfg.Sizes, err = parseInts(*sizes); err != nil {
		return fmt.Errorf("-sizes: %w", err)
	}
	if cfg.Windows, err = perSize("windows", *windows, cfg.Sizes); err != nil {
		return err
	}
	if cfg.Trials, err = perSize("trials", *trials, cfg.Sizes); err != nil {
		return err
	}
	for _, p := range strings.Split(*parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "fa", "detect", "throughput":
			cfg.Parts = append(cfg.Parts, p)
		default:
			return fmt.Errorf("-parts: %q (want fa, detect, throughput)", p)
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Cap < 3 {
		return fmt.Errorf("-cap %d: at least 3 windows", cfg.Cap)
	}
	if cfg.RefRows < 1000 {
		return fmt.Errorf("-ref-rows %d: at least 1,000", cfg.RefRows)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := measure(cfg, *benchTime)
	if err != nil {
		return err
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	md := markdown(res)
	if *mdOut == "" {
		_, err = os.Stdout.WriteString(md)
		return err
	}
	return os.WriteFile(*mdOut, []byte(md), 0o644)
}

func has(parts []string, p string) bool {
	for _, q := range parts {
		if q == p {
			return true
		}
	}
	return false
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s driftbench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}
