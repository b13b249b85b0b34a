"""pyod / scikit-learn side of
`cargo run --release -p gnsm-baselines --example baseline_timing -- DATASET`.

Usage: python3 benches/baselines_pyod.py DIR COLS
Reads train.f64 (fit rows), test.f64 and labels.f64 (raw little-endian f64) written by the
example, then times with the example's thread count (OMP/OpenBLAS/MKL/NUMBA_NUM_THREADS,
enforced again with threadpoolctl):
  - pyod IForest(random_state=42): fit on train, decision_function on test;
  - pyod ECOD(): fit on train, decision_function on test (pooled ECDFs);
  - scikit-learn GaussianMixture(5, full, max_iter=20, tol=0): fit, score_samples on test.
Prints `python NAME FIT_SECONDS SCORE_SECONDS AP` per detector (pip install pyod==3.6.7
scikit-learn==1.9.1).
"""
import os
import sys
import time
import warnings

import numpy as np
from pyod.models.ecod import ECOD
from pyod.models.iforest import IForest
from sklearn.metrics import average_precision_score
from sklearn.mixture import GaussianMixture

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

folder, cols = sys.argv[1], int(sys.argv[2])
train = np.fromfile(os.path.join(folder, "train.f64"), dtype="<f8").reshape(-1, cols)
test = np.fromfile(os.path.join(folder, "test.f64"), dtype="<f8").reshape(-1, cols)
labels = np.fromfile(os.path.join(folder, "labels.f64"), dtype="<f8")
threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
if threadpool_limits:
    threadpool_limits(threads)


def run(name, fit, score):
    t = time.perf_counter()
    model = fit()
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    s = score(model)
    score_s = time.perf_counter() - t
    print(f"python {name:<8} {fit_s:.3f} {score_s:.3f} {100 * average_precision_score(labels, s):.2f}")


warnings.simplefilter("ignore")
run("iforest", lambda: IForest(random_state=42, n_jobs=threads).fit(train),
    lambda m: m.decision_function(test))
run("ecod", lambda: ECOD().fit(train), lambda m: m.decision_function(test))
run("gmm5x20",
    lambda: GaussianMixture(5, covariance_type="full", max_iter=20, tol=0.0, random_state=42).fit(train),
    lambda m: -m.score_samples(test))
