# Makes sklearn_linear.json: scikit-learn 1.2 (Debian; run with /usr/bin/python3)
# LogisticRegression(lbfgs, C=1) and Ridge(alpha=1) on fixed data with a missing value
# pattern handled as the Go models do (mean imputation), the reference the Go fits match.
import json
import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

rng = np.random.default_rng(5)
n, d = 2000, 5
X = rng.normal(size=(n, d)) * np.array([1, 3, 0.5, 10, 1])
X[::13, 1] = np.nan
logit = 0.8 * X[:, 0] - 0.3 * np.nan_to_num(X[:, 1]) + 2 * X[:, 2] + 0.05 * X[:, 3] - 0.5
y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
t = 2 * X[:, 0] + 0.5 * X[:, 3] + rng.normal(size=n)
Xi = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
lr = LogisticRegression(solver="lbfgs", C=1.0, max_iter=1000, tol=1e-8).fit(Xi, y)
rg = Ridge(alpha=1.0).fit(Xi, t)
print(json.dumps({"X": [[None if np.isnan(v) else v for v in r] for r in X.tolist()], "y": y.tolist(), "t": t.tolist(),
    "lr_coef": lr.coef_[0].tolist(), "lr_intercept": float(lr.intercept_[0]),
    "ridge_coef": rg.coef_.tolist(), "ridge_intercept": float(rg.intercept_)}))
