package main

import (
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/flywheel-ml/flywheel/ml/artifact"
	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/profile"
)

// throughputInfo is the monitor's window path, one goroutine.
type throughputInfo struct {
	Paths []pathResult `json:"paths"`
	// Memory while a window is evaluated, measured live after a GC with the window held.
	LiveBytesPerValue map[string]float64 `json:"live_bytes_per_value"`
	// NullBytes is what one calibrated null keeps (feature, method, calibration size): the
	// struct and its B draws of 8 bytes.
	NullBytes int `json:"null_bytes"`
}

type pathResult struct {
	Path           string  `json:"path"`
	N              int     `json:"n"`      // predictions per window
	Values         int     `json:"values"` // feature values per window
	NsPerWindow    float64 `json:"ns_per_window"`
	ValuesPerSec   float64 `json:"values_per_second"`
	BytesPerValue  float64 `json:"alloc_bytes_per_value"`
	AllocsPerValue float64 `json:"allocs_per_value"`
}

// logged is a window as the monitor reads it from ClickHouse: each prediction's features as
// the JSON object serving logged (categorical values as their strings, missing as null).
func (b *bench) logged(r *rand.Rand, n int) (docs []string, sig []artifact.Feature) {
	for _, f := range b.s.fs {
		af := artifact.Feature{Name: f.name, Kind: "numeric"}
		if f.kind == dataset.Categorical {
			af.Kind = "categorical"
			for c := range f.probs {
				af.Vocabulary = append(af.Vocabulary, "v"+strconv.Itoa(c))
			}
		}
		sig = append(sig, af)
	}
	w := b.workerFor(n)
	b.s.window(r, &b.conds[0], w.flat[:n*len(b.s.fs)], w.rows[:n], w.preds[:n])
	for _, row := range w.rows[:n] {
		m := make(map[string]any, len(row))
		for j, v := range row {
			switch {
			case math.IsNaN(v):
				m[sig[j].Name] = nil
			case sig[j].Kind == "categorical":
				m[sig[j].Name] = sig[j].Vocabulary[int(v)]
			default:
				m[sig[j].Name] = v
			}
		}
		raw, _ := json.Marshal(m)
		docs = append(docs, string(raw))
	}
	return docs, sig
}

// prediction is source.Prediction.
type prediction struct {
	Features map[string]any
	Score    float64
}

// fromLog is the Go part of the monitor's window path after the ClickHouse driver: decode
// each row's features (source.Window: json.Unmarshal into map[string]any), encode them in
// signature order with the artifact's encoders (evaluate.dataWindow), then detect.
func (b *bench) fromLog(docs []string, scores []float64, sig []artifact.Feature, encs []*artifact.Encoder, cols [][]float64) (verdict, []prediction, [][]float64) {
	preds := make([]prediction, 0, len(docs))
	for i, d := range docs {
		var p prediction
		if err := json.Unmarshal([]byte(d), &p.Features); err != nil {
			continue
		}
		p.Score = scores[i]
		preds = append(preds, p)
	}
	rows := make([][]float64, len(preds))
	sc := make([]float64, len(preds))
	for i, p := range preds {
		row := make([]float64, len(encs))
		for j, enc := range encs {
			v, err := enc.Encode(p.Features[sig[j].Name])
			if err != nil {
				v = math.NaN()
			}
			row[j] = v
		}
		rows[i], sc[i] = row, p.Score
	}
	return b.mon.detect(rows, sc, cols), preds, rows
}

var benchInit bool

func (b *bench) throughput(prof *profile.Profile, benchTime time.Duration) (*throughputInfo, error) {
	if !benchInit {
		testing.Init()
		benchInit = true
	}
	if err := flag.CommandLine.Set("test.benchtime", benchTime.String()); err != nil {
		return nil, err
	}
	k := len(b.s.fs)
	out := &throughputInfo{LiveBytesPerValue: map[string]float64{}}
	for _, n := range []int{1000, 10000} {
		r := rand.New(rand.NewPCG(b.cfg.Seed, seedOf(3, uint64(n))))
		// fresh windows, 400,000 values in all, taken in turn: one window scored again and
		// again would let the branch predictor learn its values
		type window struct {
			rows  [][]float64
			preds []float64
			docs  []string
			sig   []artifact.Feature
		}
		wins := make([]window, max(2, 400000/(n*k)))
		for i := range wins {
			w := b.workerFor(n)
			b.s.window(r, &b.conds[0], w.flat, w.rows, w.preds)
			wins[i].rows, wins[i].preds = w.rows, w.preds
			wins[i].docs, wins[i].sig = b.logged(r, n)
		}
		cols := b.workerFor(n).cols
		for _, w := range wins { // calibrate every size met outside the timing
			b.mon.detect(w.rows, w.preds, cols)
		}
		res := testing.Benchmark(func(tb *testing.B) {
			tb.ReportAllocs()
			i := 0
			for tb.Loop() {
				b.mon.detect(wins[i].rows, wins[i].preds, cols)
				i = (i + 1) % len(wins)
			}
		})
		out.Paths = append(out.Paths, pathOf("detect (encoded rows → 20 statistics, BH)", n, k, res))
		logf("throughput n=%d detect: %s", n, res)

		sig := wins[0].sig
		encs := make([]*artifact.Encoder, len(sig))
		for j, f := range sig {
			encs[j] = f.Encoder()
		}
		res = testing.Benchmark(func(tb *testing.B) {
			tb.ReportAllocs()
			i := 0
			for tb.Loop() {
				b.fromLog(wins[i].docs, wins[i].preds, sig, encs, cols)
				i = (i + 1) % len(wins)
			}
		})
		out.Paths = append(out.Paths, pathOf("logged JSON → decode, encode, detect", n, k, res))
		logf("throughput n=%d from the log: %s", n, res)

		if n == 10000 {
			before := liveHeap()
			_, held, heldRows := b.fromLog(wins[0].docs, wins[0].preds, sig, encs, cols)
			after := liveHeap()
			out.LiveBytesPerValue["decoded predictions and encoded rows"] = float64(after-before) / float64(n*k)
			runtime.KeepAlive(held)
			runtime.KeepAlive(heldRows)
			held, heldRows = nil, nil
			before = liveHeap()
			encoded := make([][]float64, n)
			for i := range encoded {
				encoded[i] = make([]float64, k)
			}
			after = liveHeap()
			out.LiveBytesPerValue["encoded rows alone"] = float64(after-before) / float64(n*k)
			runtime.KeepAlive(encoded)
		}
		runtime.KeepAlive(wins)
	}
	nl, err := b.mon.c.Null(b.mon.names[0], b.mon.cfg.Numeric, 1000)
	if err != nil {
		return nil, err
	}
	out.NullBytes = int(unsafe.Sizeof(*nl)) + 8*cap(nl.Draws) + len(nl.Feature)
	return out, nil
}

func pathOf(name string, n, k int, r testing.BenchmarkResult) pathResult {
	ns := float64(r.T.Nanoseconds()) / float64(r.N)
	v := float64(n * k)
	return pathResult{Path: name, N: n, Values: n * k, NsPerWindow: ns, ValuesPerSec: v / ns * 1e9,
		BytesPerValue: float64(r.AllocedBytesPerOp()) / v, AllocsPerValue: float64(r.AllocsPerOp()) / v}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
