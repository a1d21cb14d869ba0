package v2_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"sync"

	v2 "github.com/flywheel-ml/flywheel/services/serving/v2"
)

// fake is a Backend with two models:
//
//   - "fraud" (versions "1" and "2", default "2"): numeric columns amount, txn_count_1h,
//     amount_avg_24h (also its Matrix, in that order) and BYTES columns merchant_category and
//     channel; outputs score (FP64 [N,1]: the sum of the row's numbers, NaN counted as 0, plus
//     the length of its strings) and label (INT64 [N,1]: score > 100).
//   - "cold": known, never ready; Infer answers 503.
//
// A column named "boom" makes Infer fail with a plain error (500); "teapot" with a *Error 418.
type fake struct {
	notLive, notReady bool

	mu   sync.Mutex
	last *v2.Request
}

var fraudMeta = v2.ModelMetadata{
	Name: "fraud", Versions: []string{"1", "2"}, Platform: "flywheel_gbdt",
	Inputs: []v2.TensorMetadata{
		{Name: "amount", Datatype: "FP64", Shape: []int64{-1}},
		{Name: "txn_count_1h", Datatype: "FP64", Shape: []int64{-1}},
		{Name: "amount_avg_24h", Datatype: "FP64", Shape: []int64{-1}},
		{Name: "merchant_category", Datatype: "BYTES", Shape: []int64{-1}},
		{Name: "channel", Datatype: "BYTES", Shape: []int64{-1}},
	},
	Outputs: []v2.TensorMetadata{
		{Name: "score", Datatype: "FP64", Shape: []int64{-1, 1}},
		{Name: "label", Datatype: "INT64", Shape: []int64{-1, 1}},
	},
	Matrix: []string{"amount", "txn_count_1h", "amount_avg_24h"},
}

func (f *fake) Live() bool  { return !f.notLive }
func (f *fake) Ready() bool { return !f.notReady }

func (f *fake) resolve(name, version string) (string, error) {
	switch name {
	case "fraud":
		switch version {
		case "":
			return "2", nil
		case "1", "2":
			return version, nil
		}
		return "", v2.ErrVersionNotFound
	case "cold":
		if version == "" || version == "1" {
			return "1", nil
		}
		return "", fmt.Errorf("cold: %w", v2.ErrVersionNotFound)
	}
	return "", v2.ErrModelNotFound
}

func (f *fake) Metadata(name, version string) (v2.ModelMetadata, error) {
	if _, err := f.resolve(name, version); err != nil {
		return v2.ModelMetadata{}, err
	}
	if name == "cold" {
		return v2.ModelMetadata{Name: "cold", Versions: []string{"1"}, Platform: "flywheel_linear"}, nil
	}
	return fraudMeta, nil
}

func (f *fake) ModelReady(name, version string) (bool, error) {
	if _, err := f.resolve(name, version); err != nil {
		return false, err
	}
	return name == "fraud", nil
}

func (f *fake) lastRequest() *v2.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fake) Infer(ctx context.Context, name, version string, req *v2.Request) (*v2.Response, error) {
	v, err := f.resolve(name, version)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.last = req
	f.mu.Unlock()
	if name == "cold" {
		return nil, &v2.Error{Status: http.StatusServiceUnavailable, Msg: `model "cold" is not loaded yet`}
	}
	cols := append([]v2.Column(nil), req.Columns...)
	sort.Slice(cols, func(i, j int) bool { return cols[i].Name < cols[j].Name })
	score := make([]float64, req.Rows)
	label := make([]int64, req.Rows)
	for _, c := range cols {
		switch c.Name {
		case "boom":
			return nil, errors.New("scorer exploded: secret internals")
		case "teapot":
			return nil, &v2.Error{Status: http.StatusTeapot, Msg: "short and stout"}
		}
		for i := range req.Rows {
			if c.Numbers != nil && !math.IsNaN(c.Numbers[i]) {
				score[i] += c.Numbers[i]
			}
			if c.Strings != nil {
				score[i] += float64(len(c.Strings[i]))
			}
		}
	}
	for i, s := range score {
		if s > 100 {
			label[i] = 1
		}
	}
	n := int64(req.Rows)
	return &v2.Response{
		ModelName: name, ModelVersion: v, ID: req.ID,
		Outputs: []v2.OutputTensor{
			{Name: "score", Datatype: "FP64", Shape: []int64{n, 1}, FP64: score},
			{Name: "label", Datatype: "INT64", Shape: []int64{n, 1}, INT64: label},
		},
		Parameters: map[string]any{"rows": n},
	}, nil
}
