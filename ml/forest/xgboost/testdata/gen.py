#!/usr/bin/python3
"""Writes the XGBoost fixtures of ml/forest/xgboost: small models saved by XGBoost itself
with save_model("<name>.json"), the input rows (<name>_input.tsv, "nan" for missing) and
XGBoost's own outputs for them, float32 values printed with %.17g (exact). Models are
stored gzipped (<name>.json.gz) to keep the fixtures under 1 MB.

  <name>_pred.tsv    what the scikit-learn wrapper's predict / predict_proba returns (for
                     an early-stopped model: the first best_iteration+1 rounds)
  <name>_margin.tsv  the raw margins, output_margin=True, same rounds
  binary_pred_all.tsv  Booster.predict on a DMatrix: every tree, best_iteration ignored
  dart_pred_dmatrix.tsv  Booster.predict on a DMatrix (dart's DMatrix path)

Run with /usr/bin/python3 (python3-xgboost 1.7.4, numpy, scikit-learn) from this
directory:  /usr/bin/python3 gen.py   — `go test` never needs Python.
"""
import gzip
import os

import numpy as np
import xgboost as xgb

assert xgb.__version__ == "1.7.4", xgb.__version__
rng = np.random.default_rng(7)


def rows(n, d, missing=0.1):
    """Normal values rounded to 6 significant digits (the doubles nearest those decimals, so
    the %.6g text of the input files reads back as exactly what XGBoost was given), some
    missing."""
    x = np.vectorize(lambda v: float("%.6g" % v))(rng.normal(size=(n, d)))
    x[rng.random(size=x.shape) < missing] = np.nan
    return x


def save(name, model, x, pred, margin):
    """The model as XGBoost wrote it, gzipped (byte for byte inside; mtime 0 so a rerun
    gives the same file) to keep the fixtures small."""
    path = name + ".json"
    model.save_model(path)
    with open(path, "rb") as f, gzip.GzipFile(path + ".gz", "wb", mtime=0) as g:
        g.write(f.read())
    os.remove(path)
    np.savetxt(name + "_input.tsv", x, fmt="%.6g", delimiter="\t")
    table(name + "_pred.tsv", pred)
    table(name + "_margin.tsv", margin)


def table(path, v):
    v = np.asarray(v, dtype=np.float32).astype(np.float64)
    if v.ndim == 1:
        v = v[:, None]
    np.savetxt(path, v, fmt="%.17g", delimiter="\t")


def nz(v):
    return np.nan_to_num(v)


d = 8

# binary:logistic with NaNs, base_score 0.4 and early stopping (best_iteration < rounds)
x = rows(1200, d)
y = ((nz(x[:, 0]) + 0.5 * nz(x[:, 1]) ** 2 - 0.7 * nz(x[:, 2]) + rng.normal(size=len(x))) > 0.3).astype(int)
clf = xgb.XGBClassifier(n_estimators=300, max_depth=4, learning_rate=0.3, early_stopping_rounds=5,
                        eval_metric="logloss", base_score=0.4)
clf.fit(x[:800], y[:800], eval_set=[(x[800:1000], y[800:1000])], verbose=False)
assert clf.best_iteration + 1 < clf.get_booster().num_boosted_rounds(), "early stopping did not stop early"
xt = x[1000:]
save("binary", clf, xt, clf.predict_proba(xt)[:, 1], clf.predict(xt, output_margin=True))
table("binary_pred_all.tsv", clf.get_booster().predict(xgb.DMatrix(xt)))

# reg:squarederror
x = rows(1200, d)
yr = 3 * nz(x[:, 0]) + np.sin(nz(x[:, 3])) + rng.normal(scale=0.3, size=len(x))
reg = xgb.XGBRegressor(n_estimators=60, max_depth=4, learning_rate=0.1)
reg.fit(x[:1000], yr[:1000])
xt = x[1000:]
save("regression", reg, xt, reg.predict(xt), reg.predict(xt, output_margin=True))

# count:poisson
yp = rng.poisson(np.exp(0.5 * nz(x[:, 1]) - 0.3 * nz(x[:, 4])))
poi = xgb.XGBRegressor(objective="count:poisson", n_estimators=60, max_depth=3, learning_rate=0.2)
poi.fit(x[:1000], yp[:1000])
save("poisson", poi, xt, poi.predict(xt), poi.predict(xt, output_margin=True))

# multi:softprob, 3 classes
yc = np.digitize(nz(x[:, 0]) + nz(x[:, 5]), [-0.7, 0.7])
mc = xgb.XGBClassifier(n_estimators=30, max_depth=3, learning_rate=0.3)
mc.fit(x[:1000], yc[:1000])
save("multiclass", mc, xt, mc.predict_proba(xt), mc.predict(xt, output_margin=True))

# categorical splits (hist, enable_categorical): feature 1 has 3 categories (one-hot
# splits), feature 2 has 12 (partition splits); test rows hold unseen codes 12 and 13
n = 1200
x = rows(n, 4, missing=0.05)
x[:, 1] = np.where(np.isnan(x[:, 1]), np.nan, rng.integers(0, 3, size=n))
x[:, 2] = np.where(np.isnan(x[:, 2]), np.nan, rng.integers(0, 12, size=n))
x[1000:1020, 2] = 12 + rng.integers(0, 2, size=20)
effect = np.array([0.5, -1.0, 2.0, 0.0, 1.5, -2.0, 0.3, 1.0, -0.5, 0.8, -1.2, 0.1])
yk = (nz(x[:, 0]) + np.where(x[:, 1] == 2, 1.0, 0.0)
      + np.where(np.isnan(x[:, 2]) | (x[:, 2] >= 12), 0.0, effect[np.clip(nz(x[:, 2]), 0, 11).astype(int)])
      + rng.normal(scale=0.5, size=n) > 0.5).astype(int)
cat = xgb.XGBClassifier(n_estimators=40, max_depth=4, learning_rate=0.3, tree_method="hist",
                        enable_categorical=True, max_cat_to_onehot=4, feature_types=["q", "c", "c", "q"])
cat.fit(x[:1000], yk[:1000])
xt = x[1000:]
save("categorical", cat, xt, cat.predict_proba(xt)[:, 1], cat.predict(xt, output_margin=True))

# dart: trees carry weight_drop; scikit-learn's predict goes through inplace_predict, whose
# dart sum ((base + leaf) - base) * weight differs in float32 rounding from the DMatrix
# path's leaf * weight, which the parser reproduces
x = rows(1200, d)
y = ((nz(x[:, 0]) - nz(x[:, 1]) + rng.normal(size=len(x))) > 0).astype(int)
dart = xgb.XGBClassifier(booster="dart", n_estimators=30, max_depth=3, learning_rate=0.3, rate_drop=0.2,
                         skip_drop=0.0, random_state=1)
dart.fit(x[:1000], y[:1000])
xt = x[1000:]
save("dart", dart, xt, dart.predict_proba(xt)[:, 1], dart.predict(xt, output_margin=True))
table("dart_pred_dmatrix.tsv", dart.get_booster().predict(xgb.DMatrix(xt)))

# the benchmark model: 200 rounds of depth 6, binary, 30 features
x = rows(5900, 30, missing=0.02)
w = rng.normal(size=30)
y = ((nz(x) @ w + np.sin(3 * nz(x[:, 0])) * 2 + rng.normal(size=len(x))) > 0).astype(int)
big = xgb.XGBClassifier(n_estimators=200, max_depth=6, learning_rate=0.1)
big.fit(x[:5800], y[:5800])
xt = x[5800:]
save("bench200", big, xt, big.predict_proba(xt)[:, 1], big.predict(xt, output_margin=True))
