import sys, numpy as np
from common import *
from sklearn.mixture import GaussianMixture
from scipy.special import logsumexp

def marginals(C, K, fit_rows, alpha=1.0):
    lp = np.zeros(len(C))
    for j in range(C.shape[1]):
        cnt = np.bincount(C[fit_rows, j][C[fit_rows, j] >= 0], minlength=K[j]) + alpha
        p = np.log(cnt / cnt.sum())
        lp += np.where(C[:, j] >= 0, p[np.maximum(C[:, j], 0)], np.log(alpha / cnt.sum()))
    return lp

def latent_class(C, K, tr, va, ks=(1,2,4,8,16,32), iters=200, seed=0, alpha=0.5):
    """mixture of independent categoricals, k by mean val LL, refit on tr+va"""
    def fit(rows, k, rng):
        n = len(rows); X = C[rows]
        R = rng.dirichlet(np.ones(k), size=n)
        prev = -np.inf
        for it in range(iters):
            pi = (R.sum(0) + 1e-3); pi /= pi.sum()
            th = []
            for j in range(C.shape[1]):
                M = np.zeros((k, K[j])) + alpha
                np.add.at(M.T, X[:, j], R)  # M[:, c] += R rows with cat c
                th.append(np.log(M / M.sum(1, keepdims=True)))
            L = np.log(pi)[None, :] + sum(th[j][:, X[:, j]].T for j in range(C.shape[1]))
            ll = logsumexp(L, 1); R = np.exp(L - ll[:, None])
            if ll.mean() - prev < 1e-6: break
            prev = ll.mean()
        return pi, th
    def score(model, rows):
        pi, th = model; X = C[rows]
        L = np.log(pi)[None, :] + sum(th[j][:, np.maximum(X[:, j],0)].T for j in range(C.shape[1]))
        return logsumexp(L, 1)
    rng = np.random.default_rng(seed)
    best = max(ks, key=lambda k: score(fit(tr, k, np.random.default_rng(seed)), va).mean())
    m = fit(np.concatenate([tr, va]), best, np.random.default_rng(seed))
    return m, score, best

if __name__ == "__main__":
    names = sys.argv[1:] or list(FILES)
    for name in names:
        X, y = load(name); C, K, Z = codes(name, X, y)
        res = {}
        for seed in SEEDS:
            s = split(name, seed); tr, va, te = map(np.array, (s['train'], s['val'], s['test']))
            fitr = np.concatenate([tr, va]); yt = y[te]
            r = {}
            r['random'] = (100*yt.mean(), 50)
            r['marg'] = metrics(yt, -marginals(C, K, fitr)[te])
            m, sc, k = latent_class(C, K, tr, va, seed=seed)
            r[f'lcm'] = metrics(yt, -sc(m, te))
            r['lcm_k'] = (k, 0)
            for kk, v in r.items(): res.setdefault(kk, []).append(v)
        print(name, '  '.join(f"{kk}: AP {np.mean([a for a,b in v]):.2f} [{' '.join(f'{a:.1f}' for a,b in v)}] AUC {np.mean([b for a,b in v]):.1f}" for kk, v in res.items()))
    