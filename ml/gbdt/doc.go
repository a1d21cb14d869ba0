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
// Each round's gradients and hessians are quantised to integer steps (about 11 bits at
// 800,000 rows, finer for fewer) and packed into one int64 per row, as in LightGBM's
// quantised training: histogram building, the hot loop, then does one integer add per row
// and feature, and its sums are exact.
//
// Training is deterministic: the same frame, Params and Seed give a bit-identical Model
// whatever Workers is, because histogram sums are integers (any order of adding gives the
// same bits) and every other parallel step is element-wise or reduced in a fixed order.
//
// Model is plain data that marshals to JSON; Model.Validate checks a decoded model so that a
// corrupted artifact is an error rather than a panic or an endless loop in Predict.
package gbdt
