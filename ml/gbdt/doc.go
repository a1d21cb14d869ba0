// Package gbdt trains histogram-based gradient-boosted decision trees for binary
// classification (logistic loss) and regression (squared error), in pure Go.
//
// Training bins every feature once: numeric features into at most MaxBins quantile bins fitted
// on (a deterministic sample of) the training rows, categorical features by code, with rare
// codes pooled in an "other" bin; every feature has a separate bin for missing values. Trees
// grow best-first under MaxDepth and MaxLeaves; each split tries sending the missing values
// left and right and keeps the better, and categorical splits order the categories by their
// gradient/hessian ratio so that one scan finds the best subset (as LightGBM does).
//
// Training is deterministic: the same frame, Params and Seed give a bit-identical Model
// whatever Workers is, because the parallel work is split by feature (each histogram cell
// is always summed over the node's rows in the same order) and every other parallel step is
// element-wise.
//
// Model is plain data that marshals to JSON; Model.Validate checks a decoded model so that a
// corrupted artifact is an error rather than a panic or an endless loop in Predict.
package gbdt
