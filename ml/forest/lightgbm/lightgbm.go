// Package lightgbm reads LightGBM's text model format (save_model, model.txt, versions
// v2–v4) into a forest.Model that predicts what LightGBM predicts: the same float64 sums
// of the same leaves in the same order, the same split rules (forest.NumLE and
// forest.CatLeft, kZeroThreshold included) and the objective's ConvertOutput.
//
// Supported: boosting gbdt, goss, dart (the file holds the final leaf values) and rf
// (average_output); numeric splits with LightGBM's missing types (None, Zero, NaN) and
// default directions; categorical bitset splits; objectives binary (sigmoid:s),
// cross_entropy (sigmoid), multiclass (softmax), multiclassova (sigmoid:s),
// regression/l1/huber/fair/quantile/mape and lambdarank/rank_xendcg (identity),
// poisson/gamma/tweedie (exp), and no objective line (a custom objective: raw scores, as
// LightGBM predicts them). The parameters section is checked against the header (boosting
// rf ⇔ average_output, the objective's name) and read for linear_tree and
// categorical_feature. Refused with an error saying why: linear trees, reg_sqrt,
// cross_entropy_lambda, unknown objectives and boosting types, inconsistent trees.
package lightgbm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/flywheel-ml/flywheel/ml/forest"
)

// MaxBytes bounds a model file; a larger one is refused.
const MaxBytes = 256 << 20

// MaxLeaves bounds num_leaves of one tree.
const MaxLeaves = 1 << 20

// Parse reads a LightGBM text model and returns it with its feature names.
func Parse(r io.Reader) (*forest.Model, []string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("lightgbm: read: %w", err)
	}
	if len(data) > MaxBytes {
		return nil, nil, fmt.Errorf("lightgbm: model is more than %d bytes", MaxBytes)
	}
	m, names, err := parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("lightgbm: %w", err)
	}
	return m, names, nil
}

type block struct {
	line int
	kv   map[string]string
}

func parse(data []byte) (*forest.Model, []string, error) {
	if !bytes.HasPrefix(data, []byte("tree\n")) && !bytes.HasPrefix(data, []byte("tree\r\n")) {
		return nil, nil, errors.New("not a LightGBM text model (no \"tree\" first line)")
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<16), MaxBytes+1)
	header := map[string]string{}
	params := map[string]string{} // the parameters section: "[name: value]" lines
	var trees []block
	cur := header
	line := 0
	const (
		inModel = iota
		afterTrees
		inParams
	)
	state := inModel
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		switch state {
		case afterTrees:
			if s == "parameters:" {
				state = inParams
			}
			continue
		case inParams:
			if s == "end of parameters" {
				state = afterTrees
				continue
			}
			if k, v, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), ": "); ok {
				params[k] = v
			}
			continue
		}
		if s == "end of trees" {
			state = afterTrees
			continue
		}
		if strings.HasPrefix(s, "Tree=") {
			if len(trees) >= forest.MaxTrees {
				return nil, nil, fmt.Errorf("more than %d trees", forest.MaxTrees)
			}
			trees = append(trees, block{line: line, kv: map[string]string{}})
			cur = trees[len(trees)-1].kv
			continue
		}
		if s == "" || (line == 1 && s == "tree") {
			continue
		}
		// A line without "=" is a key without a value, as LightGBM reads it: average_output.
		k, v, _ := strings.Cut(s, "=")
		if _, dup := cur[k]; dup {
			return nil, nil, fmt.Errorf("line %d: %s given twice", line, k)
		}
		cur[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if v := header["version"]; v != "" && v != "v2" && v != "v3" && v != "v4" {
		return nil, nil, fmt.Errorf("model version %q is not v2, v3 or v4", v)
	}
	if v := params["linear_tree"]; v != "" && v != "0" {
		return nil, nil, errors.New("linear trees (linear_tree) are not supported")
	}
	switch b := params["boosting"]; b {
	case "", "gbdt", "gbrt", "dart", "rf", "random_forest", "goss":
		if (b == "rf" || b == "random_forest") != hasKey(header, "average_output") {
			return nil, nil, fmt.Errorf("boosting %s but average_output is %v in the header", b, hasKey(header, "average_output"))
		}
	default:
		return nil, nil, fmt.Errorf("boosting %q is not supported", b)
	}
	maxFeature, err := headerInt(header, "max_feature_idx", 0, forest.MaxFeatures-1)
	if err != nil {
		return nil, nil, err
	}
	numClass, err := headerInt(header, "num_class", 1, forest.MaxOutputs)
	if err != nil {
		return nil, nil, err
	}
	perIter := numClass
	if _, ok := header["num_tree_per_iteration"]; ok {
		if perIter, err = headerInt(header, "num_tree_per_iteration", 1, forest.MaxOutputs); err != nil {
			return nil, nil, err
		}
	}
	obj, ok := header["objective"]
	if !ok {
		// LightGBM writes no objective line for a custom objective and predicts raw
		// scores; so do we, unless the parameters name a built-in objective (a damaged file).
		if p := params["objective"]; p != "" && canonical(p) != "custom" {
			return nil, nil, fmt.Errorf("header has no objective but the parameters say objective %s", p)
		}
		obj = "custom"
	} else if name, _, _ := strings.Cut(obj, " "); params["objective"] != "" && canonical(params["objective"]) != canonical(name) {
		return nil, nil, fmt.Errorf("header objective %q, parameters objective %q", obj, params["objective"])
	}
	transform, scale, err := objective(obj, perIter)
	if err != nil {
		return nil, nil, err
	}
	nf := maxFeature + 1
	// LightGBM always writes feature_names; requiring them also bounds the feature count by
	// the file's size.
	names := strings.Fields(header["feature_names"])
	if len(names) != nf {
		return nil, nil, fmt.Errorf("%d feature_names for max_feature_idx=%d", len(names), maxFeature)
	}
	m := forest.New(nf, perIter, transform)
	m.Trainer = forest.LightGBM
	m.SigmoidScale = scale
	m.AverageOutput = hasKey(header, "average_output")
	m.Categorical = categorical(header["feature_infos"], params["categorical_feature"], nf)
	if len(trees) == 0 {
		return nil, nil, errors.New("no trees")
	}
	if len(trees)%perIter != 0 {
		return nil, nil, fmt.Errorf("%d trees is not a multiple of num_tree_per_iteration=%d", len(trees), perIter)
	}
	for t, b := range trees {
		nodes, err := parseTree(b.kv, nf)
		if err != nil {
			return nil, nil, fmt.Errorf("Tree=%d (line %d): %w", t, b.line, err)
		}
		if err := m.AppendTree(nodes, t%perIter); err != nil {
			return nil, nil, fmt.Errorf("Tree=%d (line %d): %w", t, b.line, err)
		}
	}
	if err := m.Validate(nf); err != nil {
		return nil, nil, err
	}
	return m, names, nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// categorical marks the categorical features: those whose feature_infos entry lists
// categories ("-1:3:0:6"; a numeric feature's is its range "[0:100]", an unused one's
// "none") and those the categorical_feature parameter names by index. nil when there are
// none.
func categorical(infos, param string, nf int) []bool {
	var c []bool
	mark := func(i int) {
		if c == nil {
			c = make([]bool, nf)
		}
		c[i] = true
	}
	if f := strings.Fields(infos); len(f) == nf {
		for i, s := range f {
			if s != "none" && !strings.HasPrefix(s, "[") {
				mark(i)
			}
		}
	}
	for _, s := range strings.Split(param, ",") {
		if i, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && i >= 0 && i < nf {
			mark(i)
		}
	}
	return c
}

func headerInt(h map[string]string, k string, lo, hi int) (int, error) {
	s, ok := h[k]
	if !ok {
		return 0, fmt.Errorf("no %s", k)
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s=%q is not an integer in [%d, %d]", k, s, lo, hi)
	}
	return v, nil
}

// canonical is LightGBM's ParseObjectiveAlias.
func canonical(name string) string {
	switch name {
	case "regression", "regression_l2", "mean_squared_error", "mse", "l2", "l2_root", "root_mean_squared_error", "rmse":
		return "regression"
	case "regression_l1", "mean_absolute_error", "l1", "mae":
		return "regression_l1"
	case "multiclass", "softmax":
		return "multiclass"
	case "multiclassova", "multiclass_ova", "ova", "ovr":
		return "multiclassova"
	case "xentropy", "cross_entropy":
		return "cross_entropy"
	case "xentlambda", "cross_entropy_lambda":
		return "cross_entropy_lambda"
	case "mean_absolute_percentage_error", "mape":
		return "mape"
	case "rank_xendcg", "xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart":
		return "rank_xendcg"
	case "none", "null", "custom", "na":
		return "custom"
	}
	return name
}

// objective maps LightGBM's objective line (its ObjectiveFunction::ToString: the name,
// then parameters such as sigmoid:1, num_class:5 or sqrt) to the transform its
// ConvertOutput applies and the sigmoid scale; k is num_tree_per_iteration.
func objective(line string, k int) (string, float64, error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", 0, errors.New("empty objective")
	}
	name := canonical(f[0])
	scale, classes := 1.0, -1
	for _, p := range f[1:] {
		if p == "sqrt" {
			return "", 0, fmt.Errorf("objective %q: reg_sqrt models (sign(x)·x² output) are not supported", line)
		}
		if v, ok := strings.CutPrefix(p, "sigmoid:"); ok {
			s, err := strconv.ParseFloat(v, 64)
			if err != nil || !(s > 0) || math.IsInf(s, 0) {
				return "", 0, fmt.Errorf("objective %q: sigmoid %q is not a positive number", line, v)
			}
			scale = s
		}
		if v, ok := strings.CutPrefix(p, "num_class:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return "", 0, fmt.Errorf("objective %q: num_class %q is not an integer", line, v)
			}
			classes = n
		}
	}
	one := func(t string, scale float64) (string, float64, error) {
		if k != 1 {
			return "", 0, fmt.Errorf("objective %s with %d trees per iteration", f[0], k)
		}
		return t, scale, nil
	}
	many := func(t string, scale float64) (string, float64, error) {
		if k < 2 || (classes != -1 && classes != k) {
			return "", 0, fmt.Errorf("objective %q with %d trees per iteration", line, k)
		}
		return t, scale, nil
	}
	switch name {
	case "binary":
		return one(forest.Sigmoid, scale)
	case "cross_entropy": // 1/(1+exp(-x)), no scale
		return one(forest.Sigmoid, 1)
	case "multiclass":
		return many(forest.Softmax, 1)
	case "multiclassova":
		return many(forest.Sigmoid, scale)
	case "regression", "regression_l1", "huber", "fair", "quantile", "mape", "lambdarank", "rank_xendcg":
		return one(forest.Identity, 1)
	case "poisson", "gamma", "tweedie":
		return one(forest.Exp, 1)
	case "custom": // no ConvertOutput: raw scores, one per tree of an iteration
		return forest.Identity, 1, nil
	case "cross_entropy_lambda":
		return "", 0, errors.New("objective cross_entropy_lambda (log1p(exp(x)) output) is not supported")
	}
	return "", 0, fmt.Errorf("objective %q is not supported", line)
}

func parseTree(kv map[string]string, nf int) ([]forest.TreeNode, error) {
	if kv["is_linear"] != "" && kv["is_linear"] != "0" {
		return nil, errors.New("linear trees are not supported")
	}
	nl, err := headerInt(kv, "num_leaves", 1, MaxLeaves)
	if err != nil {
		return nil, err
	}
	leaves, err := floats(kv, "leaf_value", nl)
	if err != nil {
		return nil, err
	}
	if nl == 1 {
		return []forest.TreeNode{{Node: forest.Node{Feature: -1, Value: leaves[0]}}}, nil
	}
	ni := nl - 1
	feat, err := ints(kv, "split_feature", ni)
	if err != nil {
		return nil, err
	}
	thr, err := floats(kv, "threshold", ni)
	if err != nil {
		return nil, err
	}
	dt := make([]int, ni) // LightGBM reads a tree without decision_type as all 0
	if _, ok := kv["decision_type"]; ok {
		if dt, err = ints(kv, "decision_type", ni); err != nil {
			return nil, err
		}
	}
	lc, err := ints(kv, "left_child", ni)
	if err != nil {
		return nil, err
	}
	rc, err := ints(kv, "right_child", ni)
	if err != nil {
		return nil, err
	}
	numCat, err := headerInt(kv, "num_cat", 0, ni)
	if err != nil {
		return nil, err
	}
	var bounds, bits []int
	if numCat > 0 {
		if bounds, err = ints(kv, "cat_boundaries", numCat+1); err != nil {
			return nil, err
		}
		if bits, err = ints(kv, "cat_threshold", -1); err != nil {
			return nil, err
		}
		for i, b := range bounds {
			if b < 0 || b > len(bits) || (i > 0 && b < bounds[i-1]) {
				return nil, fmt.Errorf("cat_boundaries %v do not index the %d cat_threshold words", bounds, len(bits))
			}
		}
	}
	nodes := make([]forest.TreeNode, ni+nl)
	child := func(c int) (int32, error) {
		if c >= 0 {
			if c >= ni {
				return 0, fmt.Errorf("child %d of %d internal nodes", c, ni)
			}
			return int32(c), nil
		}
		if ^c >= nl {
			return 0, fmt.Errorf("child leaf %d of %d leaves", ^c, nl)
		}
		return int32(ni + ^c), nil
	}
	for i := range ni {
		n := &nodes[i]
		if feat[i] < 0 || feat[i] >= nf {
			return nil, fmt.Errorf("node %d splits on feature %d of %d", i, feat[i], nf)
		}
		if dt[i] < 0 || dt[i] > 127 {
			return nil, fmt.Errorf("node %d has decision_type %d", i, dt[i])
		}
		n.Feature = int32(feat[i])
		n.DefaultLeft = dt[i]&2 != 0
		n.Missing = uint8(dt[i]>>2) & 3
		if n.Missing > forest.MissingNaN {
			return nil, fmt.Errorf("node %d has missing type %d", i, n.Missing)
		}
		if n.Left, err = child(lc[i]); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		if n.Right, err = child(rc[i]); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		if dt[i]&1 != 0 {
			ci := thr[i]
			if ci < 0 || ci >= float64(numCat) || ci != math.Trunc(ci) {
				return nil, fmt.Errorf("node %d: categorical threshold %v is not an index below num_cat=%d", i, ci, numCat)
			}
			n.Kind = forest.CatLeft
			c := int(ci)
			words := bits[bounds[c]:bounds[c+1]]
			n.CatBits = make([]uint32, len(words))
			for j, w := range words {
				if w < 0 || w > math.MaxUint32 {
					return nil, fmt.Errorf("node %d: cat_threshold word %d is not a uint32", i, w)
				}
				n.CatBits[j] = uint32(w)
			}
		} else {
			if math.IsNaN(thr[i]) {
				return nil, fmt.Errorf("node %d has threshold NaN", i)
			}
			n.Kind = forest.NumLE
			n.Threshold = thr[i]
		}
	}
	for j, v := range leaves {
		nodes[ni+j].Feature = -1
		nodes[ni+j].Value = v
	}
	return nodes, nil
}

// fields splits the value of k, refusing a count other than want (-1: any).
func fields(kv map[string]string, k string, want int) ([]string, error) {
	s, ok := kv[k]
	if !ok {
		return nil, fmt.Errorf("no %s", k)
	}
	// Count before splitting so a short line claiming many values allocates little.
	n := len(strings.Fields(s))
	if want >= 0 && n != want {
		return nil, fmt.Errorf("%s has %d values, want %d", k, n, want)
	}
	return strings.Fields(s), nil
}

func floats(kv map[string]string, k string, want int) ([]float64, error) {
	f, err := fields(kv, k, want)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, s := range f {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, fmt.Errorf("%s value %d %q is not a number", k, i, s)
		}
		if math.IsInf(v, 0) && k == "leaf_value" {
			return nil, fmt.Errorf("%s value %d is %q", k, i, s)
		}
		out[i] = v
	}
	return out, nil
}

func ints(kv map[string]string, k string, want int) ([]int, error) {
	f, err := fields(kv, k, want)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(f))
	for i, s := range f {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s value %d %q is not an integer", k, i, s)
		}
		out[i] = int(v)
	}
	return out, nil
}
