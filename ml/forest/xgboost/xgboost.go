// Package xgboost reads XGBoost's JSON model format (save_model("m.json"), 1.x) into a
// forest.Model that predicts what XGBoost 1.7 predicts, in its float32 arithmetic.
//
// Supported: gbtree boosters (num_parallel_tree ≥ 1) and dart boosters (each tree's leaves
// multiplied by its weight_drop in float32, as Booster.predict on a DMatrix does); numeric
// splits (float32(x) < float32(t) goes left, NaN the default side), categorical splits
// (listed categories go right); objectives binary:logistic, reg:logistic (sigmoid),
// binary:logitraw, reg:squarederror and the other identity regressions, rank:*,
// count:poisson, reg:gamma, reg:tweedie, survival:cox (exp), multi:softprob and
// multi:softmax (both served as the softmax probabilities; XGBoost's multi:softmax predict
// returns their argmax). base_score is read in output space and turned into a margin by the
// objective's inverse link in float32, as XGBoost does.
//
// best_iteration: XGBoost 1.7's Booster.predict (and the C API) uses every tree whatever
// the learner's best_iteration attribute says; its scikit-learn wrapper's predict and
// predict_proba use the first best_iteration+1 rounds when the attribute is set (it is set
// after every scikit-learn fit, to the last round without early stopping). Parse follows
// the scikit-learn wrapper, the way most saved models are used; ParseWith with
// Options.AllTrees follows Booster.predict.
//
// Refused with an error saying why: gblinear boosters, vector leaves (multi-target trees),
// UBJSON and the old binary format, other objectives, more than MaxFeatures features.
package xgboost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/flywheel-ml/flywheel/ml/forest"
)

// MaxBytes bounds a model file; a larger one is refused.
const MaxBytes = 256 << 20

// MaxFeatures bounds num_feature.
const MaxFeatures = 1 << 20

type flag bool

// UnmarshalJSON accepts true/false and 0/1 (XGBoost writes default_left as integers).
func (f *flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", "1":
		*f = true
	case "false", "0":
		*f = false
	default:
		return fmt.Errorf("default_left value %s is not 0, 1, true or false", b)
	}
	return nil
}

// f32 is a float32 read as XGBoost reads numbers: a decimal rounded to float32 directly,
// or NaN, Infinity, -Infinity (which XGBoost writes bare and normalize turns into strings).
type f32 float32

func (f *f32) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"NaN"`:
		*f = f32(math.NaN())
	case `"Infinity"`, `"+Infinity"`:
		*f = f32(math.Inf(1))
	case `"-Infinity"`:
		*f = f32(math.Inf(-1))
	default:
		v, err := strconv.ParseFloat(string(b), 32)
		if err != nil {
			return fmt.Errorf("%s is not a float32", b)
		}
		*f = f32(v)
	}
	return nil
}

// normalize quotes the bare NaN, Infinity, +Infinity and -Infinity XGBoost's JSON writer
// emits (its categorical splits have NaN conditions), which encoding/json refuses; strings
// are copied as they are. The input is returned unchanged when it has none.
func normalize(data []byte) []byte {
	if !bytes.Contains(data, []byte("NaN")) && !bytes.Contains(data, []byte("Infinity")) {
		return data
	}
	out := make([]byte, 0, len(data)+len(data)/8)
	inString, escaped := false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			out = append(out, c)
			continue
		}
		if tok := bareToken(data[i:]); tok != "" {
			out = append(append(append(out, '"'), tok...), '"')
			i += len(tok) - 1
			continue
		}
		out = append(out, c)
	}
	return out
}

// bareToken is the NaN or infinity b starts with, or "".
func bareToken(b []byte) string {
	for _, tok := range []string{"NaN", "Infinity", "-Infinity", "+Infinity"} {
		if bytes.HasPrefix(b, []byte(tok)) {
			return tok
		}
	}
	return ""
}

type tree struct {
	LeftChildren      []int32 `json:"left_children"`
	RightChildren     []int32 `json:"right_children"`
	SplitIndices      []int32 `json:"split_indices"`
	SplitConditions   []f32   `json:"split_conditions"`
	DefaultLeft       []flag  `json:"default_left"`
	SplitType         []int   `json:"split_type"`
	Categories        []int64 `json:"categories"`
	CategoriesNodes   []int32 `json:"categories_nodes"`
	CategoriesSegment []int64 `json:"categories_segments"`
	CategoriesSizes   []int64 `json:"categories_sizes"`
	TreeParam         struct {
		NumNodes       string `json:"num_nodes"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
}

type gbtreeModel struct {
	Param struct {
		NumParallelTree string `json:"num_parallel_tree"`
		NumTrees        string `json:"num_trees"`
		SizeLeafVector  string `json:"size_leaf_vector"`
	} `json:"gbtree_model_param"`
	TreeInfo []int32 `json:"tree_info"`
	Trees    []tree  `json:"trees"`
}

type file struct {
	Learner struct {
		Attributes         map[string]string `json:"attributes"`
		FeatureNames       []string          `json:"feature_names"`
		FeatureTypes       []string          `json:"feature_types"`
		LearnerModelParams struct {
			BaseScore  string `json:"base_score"`
			NumClass   string `json:"num_class"`
			NumFeature string `json:"num_feature"`
			NumTarget  string `json:"num_target"`
		} `json:"learner_model_param"`
		Objective struct {
			Name string `json:"name"`
		} `json:"objective"`
		GradientBooster struct {
			Name   string      `json:"name"`
			Model  gbtreeModel `json:"model"` // gbtree
			Gbtree struct {    // dart: the trees, and a weight per tree
				Model gbtreeModel `json:"model"`
			} `json:"gbtree"`
			WeightDrop []f32 `json:"weight_drop"`
		} `json:"gradient_booster"`
	} `json:"learner"`
	Version []int `json:"version"`
}

// Options change what ParseWith keeps.
type Options struct {
	// AllTrees keeps every tree, as Booster.predict does, instead of the first
	// best_iteration+1 rounds the scikit-learn wrapper predicts with.
	AllTrees bool
}

// Parse reads an XGBoost JSON model and returns it with its feature names (f0, f1, … when
// the model has none), keeping the rounds the scikit-learn wrapper predicts with.
func Parse(data []byte) (*forest.Model, []string, error) {
	return ParseWith(data, Options{})
}

// ParseWith is Parse with options.
func ParseWith(data []byte, o Options) (*forest.Model, []string, error) {
	m, names, err := parse(data, o)
	if err != nil {
		return nil, nil, fmt.Errorf("xgboost: %w", err)
	}
	return m, names, nil
}

func atoi(what, s string, lo, hi int) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s %q is not an integer in [%d, %d]", what, s, lo, hi)
	}
	return v, nil
}

func parse(data []byte, o Options) (*forest.Model, []string, error) {
	if len(data) > MaxBytes {
		return nil, nil, fmt.Errorf("model is %d bytes, more than %d", len(data), MaxBytes)
	}
	if b := bytes.TrimSpace(data); len(b) == 0 || b[0] != '{' {
		return nil, nil, errors.New("not an XGBoost JSON model (UBJSON and the old binary format are not read; save_model(\"m.json\"))")
	}
	var f file
	if err := json.Unmarshal(normalize(data), &f); err != nil {
		return nil, nil, fmt.Errorf("not an XGBoost JSON model: %w", err)
	}
	l := &f.Learner
	gb := &l.GradientBooster
	g := &gb.Model
	var weights []f32
	switch gb.Name {
	case "gbtree":
	case "dart":
		g, weights = &gb.Gbtree.Model, gb.WeightDrop
		if len(weights) != len(g.Trees) {
			return nil, nil, fmt.Errorf("dart booster with %d weight_drop values for %d trees", len(weights), len(g.Trees))
		}
	case "gblinear":
		return nil, nil, errors.New("gblinear boosters are not supported (not a tree model)")
	case "":
		return nil, nil, errors.New("no learner.gradient_booster.name (not an XGBoost JSON model?)")
	default:
		return nil, nil, fmt.Errorf("booster %q is not supported", gb.Name)
	}
	p := l.LearnerModelParams
	nf, err := atoi("num_feature", p.NumFeature, 1, MaxFeatures)
	if err != nil {
		return nil, nil, err
	}
	nc := 0
	if p.NumClass != "" {
		if nc, err = atoi("num_class", p.NumClass, 0, forest.MaxOutputs); err != nil {
			return nil, nil, err
		}
	}
	if p.NumTarget != "" && p.NumTarget != "1" {
		return nil, nil, fmt.Errorf("num_target %s: multi-target models are not supported", p.NumTarget)
	}
	k := max(nc, 1)
	bs, err := strconv.ParseFloat(p.BaseScore, 32)
	if err != nil || math.IsNaN(bs) || math.IsInf(bs, 0) {
		return nil, nil, fmt.Errorf("base_score %q is not a finite number", p.BaseScore)
	}
	transform, margin, err := objective(l.Objective.Name, float32(bs), k)
	if err != nil {
		return nil, nil, err
	}
	names := l.FeatureNames
	if len(names) == 0 {
		names = make([]string, nf)
		for i := range names {
			names[i] = "f" + strconv.Itoa(i)
		}
	} else if len(names) != nf {
		return nil, nil, fmt.Errorf("%d feature names for num_feature %d", len(names), nf)
	}
	if len(l.FeatureTypes) != 0 && len(l.FeatureTypes) != nf {
		return nil, nil, fmt.Errorf("%d feature types for num_feature %d", len(l.FeatureTypes), nf)
	}
	if len(g.TreeInfo) != len(g.Trees) {
		return nil, nil, fmt.Errorf("%d trees but tree_info has %d entries", len(g.Trees), len(g.TreeInfo))
	}
	if len(g.Trees) == 0 {
		return nil, nil, errors.New("no trees")
	}
	if len(g.Trees) > forest.MaxTrees {
		return nil, nil, fmt.Errorf("%d trees, more than %d", len(g.Trees), forest.MaxTrees)
	}
	if s := g.Param.SizeLeafVector; s != "" && s != "0" {
		return nil, nil, errors.New("vector leaves (multi-target trees, size_leaf_vector) are not supported")
	}
	npt := 1
	if s := g.Param.NumParallelTree; s != "" {
		if npt, err = atoi("num_parallel_tree", s, 1, forest.MaxTrees); err != nil {
			return nil, nil, err
		}
	}
	use := len(g.Trees)
	if s, ok := l.Attributes["best_iteration"]; ok && !o.AllTrees {
		best, err := atoi("best_iteration", s, 0, forest.MaxTrees)
		if err != nil {
			return nil, nil, err
		}
		use = min(use, (best+1)*k*npt)
	}
	m := forest.New(nf, k, transform)
	m.Trainer = forest.XGBoost
	m.Float32 = true
	for i := range m.BaseScore {
		m.BaseScore[i] = margin
	}
	for i, t := range l.FeatureTypes {
		switch t {
		case "c":
			if m.Categorical == nil {
				m.Categorical = make([]bool, nf)
			}
			m.Categorical[i] = true
		case "q", "float", "int", "i", "int64", "float32", "float64":
		default:
			return nil, nil, fmt.Errorf("feature %d has type %q", i, t)
		}
	}
	for t := range use {
		nodes, err := convert(&g.Trees[t], nf)
		if err != nil {
			return nil, nil, fmt.Errorf("tree %d: %w", t, err)
		}
		if weights != nil {
			w := float32(weights[t])
			if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
				return nil, nil, fmt.Errorf("tree %d: weight_drop %v", t, w)
			}
			for i := range nodes {
				if nodes[i].Feature < 0 {
					nodes[i].Value = float64(float32(nodes[i].Value) * w) // a float32 product, as XGBoost's
				}
			}
		}
		if err := m.AppendTree(nodes, int(g.TreeInfo[t])); err != nil {
			return nil, nil, fmt.Errorf("tree %d: %w", t, err)
		}
	}
	if err := m.Validate(nf); err != nil {
		return nil, nil, err
	}
	return m, names, nil
}

// objective gives the transform and the margin of base score bs (output space), computed
// in float32 as XGBoost's ProbToMargin does.
func objective(name string, bs float32, k int) (string, float64, error) {
	one := func(t string, margin float32) (string, float64, error) {
		if k != 1 {
			return "", 0, fmt.Errorf("objective %s with num_class %d", name, k)
		}
		return t, float64(margin), nil
	}
	switch {
	case name == "binary:logistic" || name == "reg:logistic":
		if !(bs > 0 && bs < 1) {
			return "", 0, fmt.Errorf("objective %s with base_score %v outside (0, 1)", name, bs)
		}
		return one(forest.Sigmoid, -float32(math.Log(float64(1/bs-1))))
	case name == "count:poisson" || name == "reg:gamma" || name == "reg:tweedie" || name == "survival:cox":
		if !(bs > 0) {
			return "", 0, fmt.Errorf("objective %s with base_score %v not positive", name, bs)
		}
		return one(forest.Exp, float32(math.Log(float64(bs))))
	case name == "binary:logitraw" || name == "reg:squarederror" || name == "reg:linear" || name == "reg:squaredlogerror" ||
		name == "reg:pseudohubererror" || name == "reg:absoluteerror" || name == "reg:quantileerror" || strings.HasPrefix(name, "rank:"):
		return one(forest.Identity, bs)
	case name == "multi:softprob" || name == "multi:softmax":
		if k < 2 {
			return "", 0, fmt.Errorf("objective %s with num_class %d", name, k)
		}
		return forest.Softmax, float64(bs), nil
	}
	return "", 0, fmt.Errorf("objective %q is not supported", name)
}

func convert(t *tree, nf int) ([]forest.TreeNode, error) {
	n := len(t.LeftChildren)
	if n == 0 {
		return nil, errors.New("no nodes")
	}
	if s := t.TreeParam.SizeLeafVector; s != "" && s != "0" {
		return nil, errors.New("vector leaves (multi-target trees) are not supported")
	}
	if t.TreeParam.NumNodes != "" && t.TreeParam.NumNodes != strconv.Itoa(n) {
		return nil, fmt.Errorf("num_nodes %s but %d left_children", t.TreeParam.NumNodes, n)
	}
	if len(t.RightChildren) != n || len(t.SplitIndices) != n || len(t.SplitConditions) != n || len(t.DefaultLeft) != n ||
		(len(t.SplitType) != 0 && len(t.SplitType) != n) {
		return nil, fmt.Errorf("node arrays of different lengths (%d left_children, %d right_children, %d split_indices, %d split_conditions, %d default_left, %d split_type)",
			n, len(t.RightChildren), len(t.SplitIndices), len(t.SplitConditions), len(t.DefaultLeft), len(t.SplitType))
	}
	nodes := make([]forest.TreeNode, n)
	for i := range n {
		nd := &nodes[i]
		c := float64(t.SplitConditions[i])
		if t.LeftChildren[i] == -1 {
			if math.IsNaN(c) || math.IsInf(c, 0) {
				return nil, fmt.Errorf("leaf %d has value %v", i, c)
			}
			nd.Feature = -1
			nd.Value = c
			continue
		}
		if f := t.SplitIndices[i]; f < 0 || int(f) >= nf {
			return nil, fmt.Errorf("node %d splits on feature %d of %d", i, f, nf)
		}
		nd.Feature = t.SplitIndices[i]
		nd.Left, nd.Right = t.LeftChildren[i], t.RightChildren[i]
		nd.DefaultLeft = bool(t.DefaultLeft[i])
		nd.Kind = forest.NumLT32
		if len(t.SplitType) == n && t.SplitType[i] != 0 {
			if t.SplitType[i] != 1 {
				return nil, fmt.Errorf("node %d has split_type %d", i, t.SplitType[i])
			}
			nd.Kind = forest.CatRight // its condition (NaN) is not used
		} else if math.IsNaN(c) || math.IsInf(c, 0) {
			return nil, fmt.Errorf("node %d splits at %v", i, c)
		} else {
			nd.Threshold = c
		}
	}
	// Categorical sets: categories[segments[j] : segments[j]+sizes[j]] for node nodes[j].
	cn, seg, sz := t.CategoriesNodes, t.CategoriesSegment, t.CategoriesSizes
	if len(seg) != len(cn) || len(sz) != len(cn) {
		return nil, fmt.Errorf("categories_nodes, _segments and _sizes have %d, %d and %d entries", len(cn), len(seg), len(sz))
	}
	has := make(map[int32]bool, len(cn))
	for j, id := range cn {
		if id < 0 || int(id) >= n || nodes[id].Kind != forest.CatRight {
			return nil, fmt.Errorf("categories_nodes names node %d, not a categorical split", id)
		}
		if has[id] {
			return nil, fmt.Errorf("categories_nodes names node %d twice", id)
		}
		has[id] = true
		if seg[j] < 0 || sz[j] < 0 || seg[j] > int64(len(t.Categories)) || sz[j] > int64(len(t.Categories))-seg[j] {
			return nil, fmt.Errorf("node %d: category segment [%d, +%d) outside the %d categories", id, seg[j], sz[j], len(t.Categories))
		}
		var bits []uint32
		for _, c := range t.Categories[seg[j] : seg[j]+sz[j]] {
			if c < 0 || c >= forest.MaxCatLen*32 {
				return nil, fmt.Errorf("node %d: category %d outside [0, %d)", id, c, forest.MaxCatLen*32)
			}
			for int(c>>5) >= len(bits) {
				bits = append(bits, 0)
			}
			bits[c>>5] |= 1 << (uint(c) & 31)
		}
		nodes[id].CatBits = bits
	}
	return nodes, nil // a categorical node not listed has no categories: everything goes left
}
