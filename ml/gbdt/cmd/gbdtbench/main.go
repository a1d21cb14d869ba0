// Command gbdtbench trains ml/gbdt on the trainer anchor datasets (see
// shared/bench/trainer/README.md) with the anchors' budgets and prints one JSON line per fit:
// fit seconds (CSV loading excluded, as anchor.py times only fit), test AUC or RMSE, and the
// peak RSS during the fit.
//
//	gbdtbench -data /tmp/anchor-data -task fraud|regression [-workers 0] [-trees 200]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/gbdt"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gbdtbench:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("data", "/tmp/anchor-data", "directory with {fraud,regression}_{train,test}.csv")
	task := flag.String("task", "fraud", "fraud or regression")
	workers := flag.Int("workers", 0, "gbdt Workers (0: GOMAXPROCS)")
	trees := flag.Int("trees", 200, "boosting rounds")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the fit here")
	numericCats := flag.Bool("numeric-cats", false, "treat cat_* as numeric, as the Python anchors do")
	trainRows := flag.Int("train-rows", 0, "train on the first N training rows only (0: all), for quick cross-checks")
	flag.Parse()

	label, objective := "label", gbdt.Binary
	if *task == "regression" {
		label, objective = "target", gbdt.Regression
	} else if *task != "fraud" {
		return fmt.Errorf("-task %q: want fraud or regression", *task)
	}
	opt := dataset.CSVOptions{Label: label}
	if !*numericCats {
		opt.Categorical = func(name string) bool { return strings.HasPrefix(name, "cat_") }
	}
	t0 := time.Now()
	train, err := load(fmt.Sprintf("%s/%s_train.csv", *dir, *task), opt)
	if err != nil {
		return err
	}
	test, err := load(fmt.Sprintf("%s/%s_test.csv", *dir, *task), opt)
	if err != nil {
		return err
	}
	loadS := time.Since(t0).Seconds()
	if *trainRows > 0 && *trainRows < train.Rows() {
		idx := make([]int, *trainRows)
		for i := range idx {
			idx[i] = i
		}
		train = train.Take(idx)
	}

	p := gbdt.DefaultParams(objective)
	p.NumTrees, p.MaxDepth, p.LearningRate, p.Workers = *trees, 6, 0.1, *workers
	runtime.GC()
	rssBefore := status("VmRSS")
	if err := resetPeakRSS(); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	t, cpu0 := time.Now(), cpuSeconds()
	m, err := gbdt.Train(context.Background(), train, p, nil)
	if err != nil {
		return err
	}
	fitS, fitCPU := time.Since(t).Seconds(), cpuSeconds()-cpu0
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	peak := status("VmHWM")

	t = time.Now()
	pred := make([]float64, test.Rows())
	m.PredictFrame(test, pred)
	predS := time.Since(t).Seconds()

	res := map[string]any{
		"task": *task, "model": "gbdt-go", "workers": p.Workers, "gomaxprocs": runtime.GOMAXPROCS(0),
		"trees": len(m.Trees), "train_rows": train.Rows(), "numeric_cats": *numericCats, "load_s": round(loadS, 2), "fit_s": round(fitS, 3), "fit_cpu_s": round(fitCPU, 2), "predict_s": round(predS, 3),
		"rss_before_fit_mib": rssBefore, "peak_rss_during_fit_mib": peak,
	}
	if objective == gbdt.Binary {
		res["auc"] = round(auc(test.Label, pred), 5)
	} else {
		s := 0.0
		for i, y := range test.Label {
			s += (pred[i] - y) * (pred[i] - y)
		}
		res["rmse"] = round(math.Sqrt(s/float64(len(pred))), 5)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}

func load(path string, opt dataset.CSVOptions) (*dataset.Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fr, err := dataset.ReadCSV(bufio.NewReader(f), opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fr, nil
}

// resetPeakRSS makes VmHWM restart from the current RSS (Linux clear_refs 5), as anchor.py
// does before fit, so the peak is the fit's own, data included.
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// cpuSeconds is the user and system CPU time of the process so far: on a shared machine it
// varies less than wall time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// status reads a /proc/self/status field in MiB.
func status(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return math.NaN()
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return round(kb/1024, 1)
		}
	}
	return math.NaN()
}

// auc is the area under the ROC curve, ties counted half (the Mann–Whitney statistic).
func auc(label, score []float64) float64 {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case score[a] < score[b]:
			return -1
		case score[a] > score[b]:
			return 1
		}
		return 0
	})
	var rankSum, pos float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if label[idx[k]] == 1 {
				rankSum += avg
				pos++
			}
		}
		i = j
	}
	neg := float64(len(idx)) - pos
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
