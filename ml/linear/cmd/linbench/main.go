// Command linbench fits the linear models on the trainer anchor data
// (../shared/bench/trainer: anchor.py gen --out DIR) with scikit-learn's settings —
// LogisticRegression(lbfgs, C=1, max_iter=200, tol=1e-4) on fraud, mean imputation + Ridge(alpha=1)
// on regression with every column numeric — and prints fit seconds (CSV loading excluded),
// the test metric and peak RSS, one JSON line per fit.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/flywheel-ml/flywheel/ml/dataset"
	"github.com/flywheel-ml/flywheel/ml/linear"
	"github.com/flywheel-ml/flywheel/ml/metrics"
)

func load(path, label string) (*dataset.Frame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return dataset.ReadCSV(f, dataset.CSVOptions{Label: label})
}

func peakRSS() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmHWM:"))
		}
	}
	return ""
}

func main() {
	dir := flag.String("data", "/tmp/anchor-data", "directory of the anchor CSVs")
	task := flag.String("task", "fraud", "fraud or regression")
	flag.Parse()
	if err := run(*dir, *task); err != nil {
		fmt.Fprintln(os.Stderr, "linbench:", err)
		os.Exit(1)
	}
}

func run(dir, task string) error {
	label := map[string]string{"fraud": "label", "regression": "target"}[task]
	train, err := load(dir+"/"+task+"_train.csv", label)
	if err != nil {
		return err
	}
	test, err := load(dir+"/"+task+"_test.csv", label)
	if err != nil {
		return err
	}
	out := map[string]any{"task": task, "rows": train.Rows()}
	start := time.Now()
	var m *linear.Model
	if task == "fraud" {
		m, err = linear.TrainLogistic(context.Background(), train, linear.Params{L2: 1, MaxIter: 200, Tol: 1e-4})
	} else {
		m, err = linear.TrainRidge(context.Background(), train, linear.Params{L2: 1})
	}
	if err != nil {
		return err
	}
	out["fit_seconds"] = time.Since(start).Seconds()
	pred := make([]float64, test.Rows())
	m.PredictFrame(test, pred)
	if task == "fraud" {
		out["auc"] = metrics.EvaluateBinary(test.Label, pred, 0.5).AUC
	} else {
		r := metrics.EvaluateRegression(test.Label, pred)
		out["rmse"], out["r2"] = r.RMSE, r.R2
	}
	out["peak_rss"] = peakRSS()
	return json.NewEncoder(os.Stdout).Encode(out)
}
