// Package xgboost reads XGBoost's JSON model format (Booster.save_model("m.json"), 1.x) into
// a forest.Model that predicts what XGBoost predicts.
//
// Supported: gbtree boosters (num_parallel_tree ≥ 1), numeric splits (float32 x < t, NaN
// takes the default direction), categorical splits (categories listed go right), objectives
// binary:logistic, reg:logistic (sigmoid), binary:logitraw, reg:squarederror and the other
// identity regressions, rank:*, count:poisson, reg:gamma, reg:tweedie, survival:cox (exp),
// multi:softprob and multi:softmax (both served as softmax probabilities). base_score is read
// in output space and turned into a margin by the objective's inverse link. When
// learner.attributes.best_iteration is set, only the trees of the first best_iteration+1
// rounds are kept, as XGBoost 1.7's scikit-learn predict does. Refused: gblinear and dart
// boosters, vector leaves, other objectives.
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

type tree struct {
	LeftChildren      []int32   `json:"left_children"`
	RightChildren     []int32   `json:"right_children"`
	SplitIndices      []int32   `json:"split_indices"`
	SplitConditions   []float64 `json:"split_conditions"`
	DefaultLeft       []flag    `json:"default_left"`
	SplitType         []int     `json:"split_type"`
	Categories        []int64   `json:"categories"`
	CategoriesNodes   []int32   `json:"categories_nodes"`
	CategoriesSegment []int64   `json:"categories_segments"`
	CategoriesSizes   []int64   `json:"categories_sizes"`
	TreeParam         struct {
		NumNodes       string `json:"num_nodes"`
		SizeLeafVector string `json:"size_leaf_vector"`
	} `json:"tree_param"`
}

type file struct {
	Learner struct {
		Attributes         map[string]string `json:"attributes"`
		FeatureNames       []string          `json:"feature_names"`
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
			Name  string `json:"name"`
			Model struct {
				Param struct {
					NumParallelTree string `json:"num_parallel_tree"`
					NumTrees        string `json:"num_trees"`
				} `json:"gbtree_model_param"`
				TreeInfo []int32 `json:"tree_info"`
				Trees    []tree  `json:"trees"`
			} `json:"model"`
		} `json:"gradient_booster"`
	} `json:"learner"`
	Version []int `json:"version"`
}

// Parse reads an XGBoost JSON model and returns it with its feature names (f0, f1, … when
// the model has none).
func Parse(data []byte) (*forest.Model, []string, error) {
	m, names, err := parse(data)
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

func parse(data []byte) (*forest.Model, []string, error) {
	if len(data) > MaxBytes {
		return nil, nil, fmt.Errorf("model is %d bytes, more than %d", len(data), MaxBytes)
	}
	if b := bytes.TrimSpace(data); len(b) > 0 && b[0] != '{' {
		return nil, nil, errors.New("not an XGBoost JSON model (UBJSON and the old binary format are not read; save_model(\"m.json\"))")
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("not an XGBoost JSON model: %w", err)
	}
	l := &f.Learner
	switch l.GradientBooster.Name {
	case "gbtree":
	case "dart":
		return nil, nil, errors.New("dart boosters are not supported (their trees carry drop weights); retrain with booster=gbtree")
	case "gblinear":
		return nil, nil, errors.New("gblinear boosters are not supported (not a tree model)")
	case "":
		return nil, nil, errors.New("no learner.gradient_booster.name (not an XGBoost JSON model?)")
	default:
		return nil, nil, fmt.Errorf("booster %q is not supported", l.GradientBooster.Name)
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
	g := &l.GradientBooster.Model
	if len(g.TreeInfo) != len(g.Trees) {
		return nil, nil, fmt.Errorf("%d trees but tree_info has %d entries", len(g.Trees), len(g.TreeInfo))
	}
	if len(g.Trees) > forest.MaxTrees {
		return nil, nil, fmt.Errorf("%d trees, more than %d", len(g.Trees), forest.MaxTrees)
	}
	npt := 1
	if s := g.Param.NumParallelTree; s != "" {
		if npt, err = atoi("num_parallel_tree", s, 1, forest.MaxTrees); err != nil {
			return nil, nil, err
		}
	}
	use := len(g.Trees)
	if s, ok := l.Attributes["best_iteration"]; ok {
		best, err := atoi("best_iteration", s, 0, forest.MaxTrees)
		if err != nil {
			return nil, nil, err
		}
		use = min(use, (best+1)*k*npt)
	}
	m := forest.New(nf, k, transform)
	for i := range m.BaseScore {
		m.BaseScore[i] = margin
	}
	for t := range use {
		nodes, err := convert(&g.Trees[t], nf)
		if err != nil {
			return nil, nil, fmt.Errorf("tree %d: %w", t, err)
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
// in float32 as XGBoost does.
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
		c := t.SplitConditions[i]
		if math.IsNaN(c) {
			return nil, fmt.Errorf("node %d has split condition NaN", i)
		}
		if t.LeftChildren[i] == -1 {
			if math.IsInf(c, 0) {
				return nil, fmt.Errorf("leaf %d has value %v", i, c)
			}
			nd.Feature = -1
			nd.Value = float64(float32(c))
			continue
		}
		if f := t.SplitIndices[i]; f < 0 || int(f) >= nf {
			return nil, fmt.Errorf("node %d splits on feature %d of %d", i, f, nf)
		}
		nd.Feature = t.SplitIndices[i]
		nd.Left, nd.Right = t.LeftChildren[i], t.RightChildren[i]
		nd.DefaultLeft = bool(t.DefaultLeft[i])
		nd.Missing = forest.MissingNaN
		nd.Kind = forest.NumLT32
		nd.Threshold = float64(float32(c))
		if len(t.SplitType) == n {
			switch t.SplitType[i] {
			case 0:
			case 1:
				nd.Kind = forest.CatRight
				nd.Threshold = 0
			default:
				return nil, fmt.Errorf("node %d has split_type %d", i, t.SplitType[i])
			}
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
