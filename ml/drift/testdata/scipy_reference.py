# Makes scipy_reference.json: scipy 1.10 (Debian, /usr/bin/python3) values beyond the shared
# README's Part A, so every branch of the Go code is checked against scipy: kstwo.sf in each of
# Simard-L'Ecuyer's regimes, ks_2samp (exact and asymp, ties, equal and unequal sizes, both
# sides of scipy's auto switch at 10,000), the chi-square survival function, wasserstein and
# jensenshannon with ties and empty bins.
# Run: /usr/bin/python3 scipy_reference.py > scipy_reference.json
#
# Samples are generated, not listed: x_i = ((i*a + c) mod p) / s + shift for i = 0..n-1,
# which Go reproduces exactly (integer arithmetic, one correctly rounded division, one addition).
import json
import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance


def gen(n, a, c, p, s, shift):
    return np.array([((i * a + c) % p) / s + shift for i in range(n)])


kstwo = []
for n, d in [(1, 0.7), (5, 0.15), (200, 0.004), (200, 0.002), (10, 0.95), (10, 0.6), (9, 0.56666666666666665),
             (4, 0.29999999999999999), (20, 0.15), (20, 0.27500000000000002), (40, 0.25), (50, 0.21),
             (100, 0.13), (100, 0.137), (100, 0.112), (100, 0.25), (140, 0.06), (140, 0.2), (3, 0.4),
             (1000, 0.05), (1000, 0.03), (1000, 0.012), (1000, 0.7), (5000, 0.03), (5000, 0.015),
             (5000, 0.0038), (50000, 0.008), (50000, 0.005), (200000, 0.002), (498, 0.072575),
             (990, 0.051552), (9091, 0.017052), (50000, 0.007276), (2000000, 0.002), (30, 0.5),
             (7, 0.5714285714285714), (141, 0.1), (12, 0.35)]:
    kstwo.append(dict(n=n, d=d, sf=float(stats.kstwo.sf(d, n))))

pairs = [
    ("E1 37 vs 53 distinct", (37, 7919, 11, 10007, 1000, 0.0), (53, 104729, 3, 10007, 1000, 0.5)),
    ("E2 200 vs 300 ties", (200, 17, 3, 50, 10, 0.0), (300, 23, 5, 50, 10, 0.3)),
    ("E3 100 vs 100", (100, 7919, 1, 1009, 100, 0.0), (100, 6361, 2, 1009, 100, 1.0)),
    ("E4 1000 vs 1500", (1000, 7919, 7, 10007, 1000, 0.0), (1500, 104729, 9, 10007, 1000, 0.4)),
    ("E5 3000 vs 2000", (3000, 7919, 5, 10007, 1000, 0.0), (2000, 6361, 13, 10007, 1000, 0.15)),
    ("E6 10000 vs 7 ties", (10000, 31, 0, 97, 10, 0.0), (7, 5, 1, 97, 10, 0.0)),
    ("E7 1 vs 5", (1, 1, 0, 7, 1, 0.0), (5, 3, 1, 7, 1, 0.0)),
    ("E8 64 vs 96 identical values", (64, 1, 0, 4, 1, 0.0), (96, 1, 0, 4, 1, 0.0)),
    ("E9 500 vs 700 shift", (500, 7919, 7, 10007, 1000, 0.0), (700, 6361, 1, 10007, 1000, 1.5)),
    ("E10 333 vs 333 shift", (333, 7919, 2, 10007, 1000, 0.0), (333, 6361, 3, 10007, 1000, 2.5)),
    ("A1 12000 vs 300", (12000, 7919, 3, 10007, 1000, 0.0), (300, 104729, 1, 10007, 1000, 0.5)),
    ("A2 15000 vs 5000", (15000, 7919, 17, 10007, 1000, 0.0), (5000, 6361, 3, 10007, 1000, 0.2)),
    ("A4 11000 vs 9000 shift", (11000, 7919, 5, 10007, 1000, 0.0), (9000, 6361, 7, 10007, 1000, 0.6)),
    ("A3 20000 vs 20000", (20000, 7919, 17, 30011, 1000, 0.0), (20000, 6361, 3, 30011, 1000, 0.05)),
]
ks = []
for name, gx, gy in pairs:
    x, y = gen(*gx), gen(*gy)
    r = {m: stats.ks_2samp(x, y, method=m) for m in ("auto", "exact", "asymp")}
    ks.append(dict(name=name, x=gx, y=gy, d=float(r["auto"].statistic),
                   p_auto=float(r["auto"].pvalue), p_exact=float(r["exact"].pvalue), p_asymp=float(r["asymp"].pvalue),
                   d_asymp=float(r["asymp"].statistic)))

chi2 = [dict(x=x, dof=k, sf=float(stats.chi2.sf(x, k))) for x, k in
        [(0.5, 1), (3.84, 1), (10.0, 3), (100.0, 9), (5.0, 20), (1e-3, 4), (60.0, 2), (250.0, 30)]]

contingency = []
for t in ([[10, 0, 5], [3, 7, 0]], [[5, 1], [2, 9]], [[1000, 2000, 3000, 4000], [1100, 1900, 3050, 3950]]):
    c, p, dof, _ = stats.chi2_contingency(np.array(t))
    contingency.append(dict(table=t, stat=float(c), p=float(p), dof=int(dof)))

w = []
for u, v in (([1, 1, 2, 3], [1, 2, 2, 5]), ([0.5], [3.0, 1.0]), ([-2, 7, 7, 7, 0.25], [7, -2, 1e-3])):
    w.append(dict(u=u, v=v, w1=float(stats.wasserstein_distance(u, v)), std=float(np.std(u))))

js = []
for p, q in (([1, 0, 0], [0, 1, 0]), ([0.5, 0.5, 0], [0.25, 0.25, 0.5]), ([3, 3, 4], [3, 3, 4])):
    js.append(dict(p=p, q=q, e=float(distance.jensenshannon(p, q)), two=float(distance.jensenshannon(p, q, base=2))))

print(json.dumps(dict(scipy=scipy.__version__, numpy=np.__version__, kstwo=kstwo, ks_2samp=ks, chi2_sf=chi2,
                      contingency=contingency, wasserstein=w, jensenshannon=js), indent=1))
