import sys, numpy as np
from common import *
from classical import marginals
from sklearn.mixture import GaussianMixture
names = sys.argv[1:] or list(FILES)
for name in names:
    X, y = load(name); C, K, Z = codes(name, X, y)
    res = {}
    for seed in SEEDS:
        s = split(name, seed); tr, va, te = map(np.array, (s['train'], s['val'], s['test']))
        fitr = np.concatenate([tr, va]); yt = y[te]
        r = {'random': (100*yt.mean(), 50)}
        for a in (0.1, 1.0):
            r[f'marg{a}'] = metrics(yt, -marginals(C, K, fitr, a)[te])
        for kk, v in r.items(): res.setdefault(kk, []).append(v)
    print(name, '  '.join(f"{kk}: AP {np.mean([a for a,b in v]):.2f} [{' '.join(f'{a:.1f}' for a,b in v)}] AUC {np.mean([b for a,b in v]):.1f}" for kk, v in res.items()), flush=True)
