# Makes sklearn_reference.json: scikit-learn 1.2 (Debian, /usr/bin/python3) metrics on fixed data,
# the reference the Go metrics are tested against. Run: /usr/bin/python3 sklearn_reference.py > sklearn_reference.json
import numpy as np, json
from sklearn.metrics import roc_auc_score, average_precision_score, log_loss, brier_score_loss, r2_score, mean_squared_error, mean_absolute_error, f1_score, precision_score, recall_score, accuracy_score
rng = np.random.default_rng(3)
y = rng.integers(0, 2, 200).astype(float)
p = np.round(np.clip(0.3*y + rng.random(200)*0.7, 0, 1), 2)  # rounded: ties
yr = rng.normal(size=100); pr = yr + rng.normal(size=100)*0.5
pred = (p >= 0.5).astype(int)
out = dict(y=y.tolist(), p=p.tolist(), yr=yr.tolist(), pr=pr.tolist(),
  auc=roc_auc_score(y,p), ap=average_precision_score(y,p), logloss=log_loss(y,p), brier=brier_score_loss(y,p),
  acc=accuracy_score(y,pred), prec=precision_score(y,pred), rec=recall_score(y,pred), f1=f1_score(y,pred),
  rmse=mean_squared_error(yr,pr)**0.5, mae=mean_absolute_error(yr,pr), r2=r2_score(yr,pr))
print(json.dumps(out))
