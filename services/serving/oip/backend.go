// Package oip serves Flywheel's models over the Open Inference Protocol (KServe V2 / Triton):
// it implements the v2 front ends' Backend with the same prediction service as the own API —
// same routing, online features, prediction log.
//
// A V2 request is a set of named columns. Columns named like the model's entity keys and
// request-time fields are the instance's fields; a column named like a feature-store input
// ("card_activity:txn_count_1h") supplies that value; any other column is logged with the
// prediction. One 2-D tensor [N, F] is the model's whole input row in signature order
// (metadata "matrix"), already encoded (categorical codes), as Triton clients send it.
package oip

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/flywheel-ml/flywheel/services/serving/httpapi"
	"github.com/flywheel-ml/flywheel/services/serving/model"
	"github.com/flywheel-ml/flywheel/services/serving/predict"
	"github.com/flywheel-ml/flywheel/services/serving/routing"
	v2 "github.com/flywheel-ml/flywheel/services/serving/v2"
)

// Backend adapts the prediction service to the V2 front ends.
type Backend struct {
	predict *predict.Service
	ready   func() bool
}

// New returns the backend; ready says whether serving is ready (a champion loaded).
func New(p *predict.Service, ready func() bool) *Backend { return &Backend{predict: p, ready: ready} }

// Live reports the process is up.
func (b *Backend) Live() bool { return true }

// Ready reports a model is loaded and warm.
func (b *Backend) Ready() bool { return b.ready() }

// served returns the version of a route named by version ("" the champion).
func (b *Backend) served(name, version string) (*routing.Route, *model.Served, error) {
	r := b.predict.Routes().Get(name)
	if r == nil {
		return nil, nil, fmt.Errorf("%w: %q is not served", v2.ErrModelNotFound, name)
	}
	if version == "" {
		if r.Champion == nil {
			return r, nil, &v2.Error{Status: http.StatusServiceUnavailable, Msg: fmt.Sprintf("model %q has no version loaded yet", name)}
		}
		return r, r.Champion, nil
	}
	for _, s := range r.Versions() {
		if strconv.Itoa(s.Version) == version {
			return r, s, nil
		}
	}
	return r, nil, fmt.Errorf("%w: %s version %s is not served", v2.ErrVersionNotFound, name, version)
}

// Metadata describes a served version: inputs are the entity keys and request-time fields
// (feature-store inputs may be supplied too, by name); outputs score and label.
func (b *Backend) Metadata(name, version string) (v2.ModelMetadata, error) {
	r, s, err := b.served(name, version)
	if err != nil {
		return v2.ModelMetadata{}, err
	}
	md := v2.ModelMetadata{Name: name, Platform: "flywheel_" + s.Artifact.Algorithm}
	for _, v := range r.Versions() {
		md.Versions = append(md.Versions, strconv.Itoa(v.Version))
	}
	for _, k := range s.Plan.JoinKeys {
		md.Inputs = append(md.Inputs, v2.TensorMetadata{Name: k, Datatype: "BYTES", Shape: []int64{-1}})
	}
	for _, c := range s.Plan.Columns {
		md.Matrix = append(md.Matrix, c.Name)
		if c.Feature != "" {
			continue
		}
		dt := "FP64"
		if c.Categorical {
			dt = "BYTES"
		}
		md.Inputs = append(md.Inputs, v2.TensorMetadata{Name: c.Name, Datatype: dt, Shape: []int64{-1}})
	}
	md.Outputs = []v2.TensorMetadata{{Name: "score", Datatype: "FP64", Shape: []int64{-1}}}
	if s.Artifact.Task != "regression" {
		md.Outputs = append(md.Outputs, v2.TensorMetadata{Name: "label", Datatype: "INT64", Shape: []int64{-1}})
	}
	return md, nil
}

// ModelReady reports whether the version answers.
func (b *Backend) ModelReady(name, version string) (bool, error) {
	_, s, err := b.served(name, version)
	var ve *v2.Error
	if errors.As(err, &ve) {
		return false, nil
	}
	return s != nil, err
}

// Infer scores the request's rows.
func (b *Backend) Infer(ctx context.Context, name, version string, req *v2.Request) (*v2.Response, error) {
	_, s, err := b.served(name, version)
	if err != nil {
		return nil, err
	}
	features := map[string]bool{}
	for _, c := range s.Plan.Columns {
		if c.Feature != "" {
			features[c.Name] = true
		}
	}
	matrix := len(req.Columns) == len(s.Plan.Columns)
	for i, c := range req.Columns {
		matrix = matrix && c.Name == s.Plan.Columns[i].Name && c.Strings == nil
	}
	instances := make([]model.Instance, req.Rows)
	for i := range instances {
		instances[i] = model.Instance{Fields: make(map[string]any, len(req.Columns)), Encoded: matrix}
	}
	for _, c := range req.Columns {
		for i := range instances {
			var v any
			if c.Strings != nil {
				v = c.Strings[i]
			} else {
				v = c.Numbers[i]
			}
			if features[c.Name] || matrix {
				if instances[i].Supplied == nil {
					instances[i].Supplied = map[string]any{}
				}
				instances[i].Supplied[c.Name] = v
			} else {
				instances[i].Fields[c.Name] = v
			}
		}
	}
	pin := version
	if pin == "" && req.Headers != nil {
		pin = req.Headers.Get(httpapi.PinHeader)
	}
	id := req.ID
	if id == "" {
		id = httpapi.RequestID(&http.Request{Header: req.Headers}, "")
	}
	res, err := b.predict.Predict(ctx, &predict.Request{Model: name, RequestID: id, Pin: pin, Instances: instances})
	if err != nil {
		return nil, v2Error(err)
	}
	out := &v2.Response{ModelName: name, ID: req.ID}
	n := int64(len(res.Predictions))
	scores := make([]float64, n)
	var labels []int64
	var versions []string
	for i, p := range res.Predictions {
		scores[i] = p.Output.Score
		if p.Output.Label != nil {
			labels = append(labels, int64(*p.Output.Label))
		}
		if v := strconv.Itoa(p.Version); !slices.Contains(versions, v) {
			versions = append(versions, v)
		}
	}
	out.ModelVersion = strings.Join(versions, ",")
	out.Outputs = append(out.Outputs, v2.OutputTensor{Name: "score", Datatype: "FP64", Shape: []int64{n}, FP64: scores})
	if int64(len(labels)) == n {
		out.Outputs = append(out.Outputs, v2.OutputTensor{Name: "label", Datatype: "INT64", Shape: []int64{n}, INT64: labels})
	}
	return out, nil
}

// v2Error maps a prediction error to the status the front ends answer.
func v2Error(err error) error {
	var bad *predict.BadInput
	switch {
	case errors.As(err, &bad):
		return &v2.Error{Status: http.StatusBadRequest, Msg: bad.Msg}
	case errors.Is(err, predict.ErrUnknownModel):
		return fmt.Errorf("%w: %v", v2.ErrModelNotFound, err)
	case errors.Is(err, routing.ErrNoSuchVersion):
		return fmt.Errorf("%w: %v", v2.ErrVersionNotFound, err)
	case errors.Is(err, predict.ErrNotReady), errors.Is(err, predict.ErrStoreDown), errors.Is(err, context.DeadlineExceeded):
		return &v2.Error{Status: http.StatusServiceUnavailable, Msg: err.Error()}
	}
	return err
}
