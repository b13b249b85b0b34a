"""scikit-learn side of `cargo run --release -p msma --example gmm_timing`.

Usage: python3 benches/gmm_sklearn.py DATA.f64 ROWS COLS
Reads raw little-endian f64 rows written by the example, then times, with the thread count
the example sets (OMP/OpenBLAS/MKL_NUM_THREADS, enforced again with threadpoolctl):
  - GaussianMixture(9, full, kmeans init, max_iter=1000) on the data;
  - the reference's GridSearchCV(StandardScaler + GaussianMixture, n_components {3,5,7,9},
    5 folds, scorer = 10th percentile of score_samples) with its refit.
Prints `sklearn_fit9 SECONDS` and `sklearn_select SECONDS`.
"""
import os
import sys
import time

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

path, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
X = np.fromfile(path, dtype="<f8").reshape(rows, cols)
threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
ctx = threadpool_limits(threads) if threadpool_limits else None


def q10(model, X, y=None):
    return np.quantile(model.score_samples(X), 0.1)


t = time.perf_counter()
gm = GaussianMixture(9, covariance_type="full", max_iter=1000, random_state=0).fit(X)
print(f"sklearn_fit9 {time.perf_counter() - t:.3f}  ({gm.n_iter_} EM iterations, mean ll {gm.lower_bound_:.4f})")

t = time.perf_counter()
pipe = Pipeline([("scaler", StandardScaler()), ("GMM", GaussianMixture(random_state=0))])
grid = GridSearchCV(
    pipe,
    dict(GMM__n_components=[3, 5, 7, 9], GMM__max_iter=[1000], GMM__covariance_type=["full"]),
    cv=5,
    n_jobs=1,
    scoring=q10,
).fit(X)
print(f"sklearn_select {time.perf_counter() - t:.3f}  (chose {grid.best_params_['GMM__n_components']})")
