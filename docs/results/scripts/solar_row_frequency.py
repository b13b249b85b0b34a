"""How far an exact-row frequency count gets on solar (docs/results/tuning.md).

Scores each test row by -log(count + 0.5) of the identical row among the training inliers,
on five random 90/10 inlier splits (numpy seeds 42..46; all anomalies in the test side).
Also prints how many of the 43 anomalies are identical to some inlier row.

    python3 docs/results/scripts/solar_row_frequency.py ../shared/data/solar.csv
"""
import collections
import csv
import sys

import numpy as np
from sklearn.metrics import average_precision_score

rows = list(csv.reader(open(sys.argv[1])))[1:]
x = [tuple(r[:-1]) for r in rows]
y = np.array([int(r[-1]) for r in rows])
inliers, anomalies = np.where(y == 0)[0], np.where(y == 1)[0]
seen = {x[i] for i in inliers}
print(f"{len(inliers)} inliers, {len(seen)} distinct; "
      f"{sum(x[i] in seen for i in anomalies)} of {len(anomalies)} anomalies equal an inlier row")
ap = []
for seed in range(42, 47):
    order = np.random.default_rng(seed).permutation(inliers)
    cut = int(0.9 * len(order))
    counts = collections.Counter(x[i] for i in order[:cut])
    test = np.concatenate([order[cut:], anomalies])
    labels = np.concatenate([np.zeros(len(order) - cut), np.ones(len(anomalies))])
    ap.append(average_precision_score(labels, [-np.log(counts[x[i]] + 0.5) for i in test]))
print(f"exact-row frequency AP {100 * np.mean(ap):.2f} ± {100 * np.std(ap):.2f}")
