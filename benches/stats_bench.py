"""Reference timings for examples/stats_bench.rs: scikit-learn / NumPy equivalents.
Run: ~/.cache/radpipe/venv/bin/python benches/stats_bench.py"""
import time
import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score


def delong_var(preds, y):
    y = np.asarray(y, bool)
    m, n = y.sum(), (~y).sum()
    v10s, v01s, aucs = [], [], []
    for p in preds:
        pos, neg = p[y], p[~y]
        tx, ty = rankdata(pos), rankdata(neg)
        tz = rankdata(np.r_[pos, neg])
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10s.append((tz[:m] - tx) / n)
        v01s.append(1 - (tz[m:] - ty) / m)
    return np.array(aucs), np.atleast_2d(np.cov(v10s)) / m + np.atleast_2d(np.cov(v01s)) / n


rng = np.random.default_rng(1)
y = rng.random(600) < 0.35
s = rng.normal(size=600) + y
pos, neg = s[y], s[~y]
t = time.perf_counter()
aucs = []
for _ in range(2000):
    pp = pos[rng.integers(0, len(pos), len(pos))]
    nn = neg[rng.integers(0, len(neg), len(neg))]
    aucs.append(roc_auc_score(np.r_[np.ones(len(pp)), np.zeros(len(nn))], np.r_[pp, nn]))
lo, hi = np.percentile(aucs, [2.5, 97.5])
print(f"bootstrap AUC CI (sklearn roc_auc_score), 600 patients, 2000 resamples: {(time.perf_counter() - t) * 1e3:.1f} ms  (CI {lo:.4f}-{hi:.4f})")

y = rng.random(100_000) < 0.35
a = rng.normal(size=100_000) + y
b = a + rng.normal(size=100_000)
t = time.perf_counter()
auc, v = delong_var([a], y)
print(f"DeLong AUC + variance (NumPy Sun & Xu), 10^5 scores: {(time.perf_counter() - t) * 1e3:.1f} ms  (AUC {auc[0]:.4f})")
t = time.perf_counter()
auc, v = delong_var([a, b], y)
print(f"paired DeLong, 10^5 scores x 2 predictors: {(time.perf_counter() - t) * 1e3:.1f} ms")
t = time.perf_counter()
roc_auc_score(y, a)
print(f"sklearn roc_auc_score alone, 10^5 scores: {(time.perf_counter() - t) * 1e3:.1f} ms")
