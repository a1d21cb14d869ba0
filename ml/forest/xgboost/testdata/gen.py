#!/usr/bin/python3
"""Writes the XGBoost fixtures of ml/forest/xgboost: small models saved with save_model(.json),
input rows and XGBoost's own predictions (%.17g). Run with /usr/bin/python3 (python3-xgboost
1.7.4, numpy, scikit-learn) from this directory:  /usr/bin/python3 gen.py
"""
import numpy as np
import xgboost as xgb

rng = np.random.default_rng(7)


def rows(n, d):
    x = rng.normal(size=(n, d))
    x[rng.random(size=x.shape) < 0.1] = np.nan  # missing values
    return x


def write(name, model, x, pred):
    model.save_model(name + ".json")
    np.savetxt(name + "_input.tsv", x, fmt="%.17g", delimiter="\t")
    pred = np.asarray(pred, dtype=np.float64)
    if pred.ndim == 1:
        pred = pred[:, None]
    np.savetxt(name + "_pred.tsv", pred, fmt="%.17g", delimiter="\t")


d = 8
# binary:logistic with NaNs and early stopping (best_iteration < trees trained)
x = rows(1200, d)
y = ((np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) ** 2 - np.nan_to_num(x[:, 2]) * 0.7
      + rng.normal(scale=1.0, size=len(x))) > 0.3).astype(int)
clf = xgb.XGBClassifier(n_estimators=300, max_depth=4, learning_rate=0.3, early_stopping_rounds=5,
                        eval_metric="logloss", base_score=0.4)
clf.fit(x[:800], y[:800], eval_set=[(x[800:1000], y[800:1000])], verbose=False)
assert clf.best_iteration + 1 < clf.get_booster().num_boosted_rounds(), "early stopping did not stop early"
xt = x[1000:]
write("binary", clf, xt, clf.predict_proba(xt)[:, 1])

# reg:squarederror, 120 rounds (the benchmark model)
x = rows(1200, d)
yr = np.nan_to_num(x[:, 0]) * 3 + np.sin(np.nan_to_num(x[:, 3])) + rng.normal(scale=0.3, size=len(x))
reg = xgb.XGBRegressor(n_estimators=120, max_depth=5, learning_rate=0.1)
reg.fit(x[:1000], yr[:1000])
write("regression", reg, x[1000:], reg.predict(x[1000:]))

# count:poisson
yp = rng.poisson(np.exp(0.5 * np.nan_to_num(x[:, 1]) - 0.3 * np.nan_to_num(x[:, 4])))
poi = xgb.XGBRegressor(objective="count:poisson", n_estimators=60, max_depth=3, learning_rate=0.2)
poi.fit(x[:1000], yp[:1000])
write("poisson", poi, x[1000:], poi.predict(x[1000:]))

# multi:softprob, 3 classes
yc = np.digitize(np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 5]), [-0.7, 0.7])
mc = xgb.XGBClassifier(n_estimators=40, max_depth=3, learning_rate=0.3)
mc.fit(x[:1000], yc[:1000])
write("multiclass", mc, x[1000:], mc.predict_proba(x[1000:]))
