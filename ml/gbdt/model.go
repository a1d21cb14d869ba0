package gbdt

import (
	"slices"
)

// Model is a trained ensemble as plain data; it marshals to JSON as is. A model decoded from
// elsewhere must pass Validate before Predict is called on it.
type Model struct {
	Objective   string    `json:"objective"` // Binary or Regression
	NumFeatures int       `json:"num_features"`
	Features    []Feature `json:"features"` // one per feature, in frame column order
	BaseScore   float64   `json:"base_score"`
	Trees       []Tree    `json:"trees"`
	// BestIteration is the number of rounds whose validation loss was best when early
	// stopping ended training; Trees holds exactly those rounds. 0 when training ran all
	// rounds.
	BestIteration int `json:"best_iteration,omitempty"`

	// fast is Trees compiled for scoring by Validate or Train; nil until then, and Predict
	// walks Trees.
	fast *compiled
}

// Feature describes how the model reads one input feature.
type Feature struct {
	Categorical bool `json:"categorical,omitempty"`
	// Categories are the codes seen in training, ascending. A categorical split sends these
	// left or right; any other code is treated as missing.
	Categories []int32 `json:"categories,omitempty"`
}

// Tree is a flat array of nodes; Nodes[0] is the root and children always come after their
// parent.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Node is a split or, when Feature is -1, a leaf.
type Node struct {
	Feature int32 `json:"f"` // split feature, or -1 for a leaf
	// Threshold: for a numeric split a value v goes left when v <= Threshold.
	Threshold float64 `json:"t,omitempty"`
	// Categories: for a categorical split the codes that go left, ascending; the other
	// known codes go right.
	Categories []int32 `json:"c,omitempty"`
	// DefaultLeft sends missing values (NaN, ±Inf, negative or unseen categorical codes) left.
	DefaultLeft bool    `json:"d,omitempty"`
	Left        int32   `json:"l,omitempty"`
	Right       int32   `json:"r,omitempty"`
	Gain        float64 `json:"g,omitempty"` // the split's loss reduction, for importance
	Value       float64 `json:"v,omitempty"` // a leaf's contribution to the margin, learning rate applied
}

// IsLeaf reports whether the node is a leaf.
func (n *Node) IsLeaf() bool { return n.Feature < 0 }

// FeatureImportance is the total split gain per feature, in frame column order.
func (m *Model) FeatureImportance() []float64 {
	imp := make([]float64, m.NumFeatures)
	for _, t := range m.Trees {
		for _, n := range t.Nodes {
			if !n.IsLeaf() && int(n.Feature) < len(imp) {
				imp[n.Feature] += n.Gain
			}
		}
	}
	return imp
}

// exportFeatures describes the fitted bins as the model's features.
func exportFeatures(feats []featureBins) []Feature {
	out := make([]Feature, len(feats))
	for j, fb := range feats {
		if fb.categorical {
			codes := append(slices.Clone(fb.codes), fb.other...)
			slices.Sort(codes)
			out[j] = Feature{Categorical: true, Categories: codes}
		}
	}
	return out
}

// exportTree turns a grown tree's bin-level splits into splits on raw values.
func exportTree(nodes []treeNode, feats []featureBins) Tree {
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		if n.leaf {
			out[i] = Node{Feature: -1, Value: n.value}
			continue
		}
		s := &n.split
		fb := &feats[s.feature]
		nd := Node{Feature: int32(s.feature), DefaultLeft: s.defaultLeft, Left: int32(n.left), Right: int32(n.right), Gain: s.gain}
		if fb.categorical {
			for b, code := range fb.codes {
				if s.left.has(uint8(b)) {
					nd.Categories = append(nd.Categories, code)
				}
			}
			if len(fb.other) > 0 && s.left.has(uint8(len(fb.codes))) {
				nd.Categories = append(nd.Categories, fb.other...)
			}
			slices.Sort(nd.Categories)
		} else {
			nd.Threshold = fb.edges[s.threshold]
		}
		out[i] = nd
	}
	return Tree{Nodes: out}
}
