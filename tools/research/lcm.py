"""Latent-class model (mixture of independent categoricals) as the frequency prior.

The library default's score is the network's denoising loss plus the independent-columns
prior (a 1-class model). Here the prior is replaced by a k-class mixture with k chosen by
validation log-likelihood (inliers only). Needs research/splits and research/combo dumps.
`python3 tools/research/lcm.py cmc solar`"""
import json, sys, csv, gzip
import numpy as np
sys.path.insert(0, "tools/research")
from combo import ap, auc

def load(name):
    p = f"../shared/data/{name}.csv"
    f = gzip.open(p + ".gz", "rt") if name == "census" else open(p)
    r = list(csv.reader(f)); return r[0], r[1:]

def codes(rows, ncols):
    cols = []
    for j in range(ncols):
        vals = {v: i for i, v in enumerate(sorted({r[j] for r in rows}))}
        cols.append(np.array([vals[r[j]] for r in rows]))
    return np.stack(cols, 1), [int(c.max()) + 1 for c in cols]

def fit_lcm(X, sizes, k, seed, alpha=1.0, iters=200, tol=1e-6):
    rng = np.random.default_rng(seed); n = len(X)
    resp = rng.dirichlet(np.ones(k), n)
    prev = -np.inf
    for _ in range(iters):
        pi = (resp.sum(0) + 1.0) / (n + k)
        th = []
        for j, K in enumerate(sizes):
            c = np.zeros((k, K))
            for v in range(K): c[:, v] = resp[X[:, j] == v].sum(0)
            th.append((c + alpha) / (c.sum(1, keepdims=True) + alpha * K))
        ll, lp = loglik(X, pi, th, return_post=True)
        resp = lp
        if ll - prev < tol * n: break
        prev = ll
    return pi, th

def loglik(X, pi, th, return_post=False):
    lj = np.log(pi)[None, :].repeat(len(X), 0)
    for j, t in enumerate(th): lj = lj + np.log(t[:, X[:, j]].T)
    m = lj.max(1, keepdims=True); s = np.log(np.exp(lj - m).sum(1)) + m[:, 0]
    if return_post: return s.sum(), np.exp(lj - s[:, None])
    return s

def independent_prior(X, sizes, fit_rows, idx):
    """The default's frequency prior up to a constant: -sum_j ln(count + 1) over fit_rows."""
    out = np.zeros(len(idx))
    for j, K in enumerate(sizes):
        c = np.bincount(X[fit_rows, j], minlength=K)
        out -= np.log(c[X[idx, j]] + 1.0)
    return out

def main():
    for name in sys.argv[1:]:
        head, rows = load(name)
        X, sizes = codes(rows, len(head) - 1)
        res = {}
        for seed in range(42, 47):
            try:
                d = json.load(open(f"research/combo/{name}-{seed}.json"))
            except FileNotFoundError:
                continue
            s = json.load(open(f"research/splits/{name}-{seed}.json"))
            tr, va, te = (np.array(s[k]) for k in ("train", "val", "test"))
            y = np.array(d["labels"], bool)
            fitrows = np.r_[tr, va]
            loss_te = np.array(d["net_test"]) - independent_prior(X, sizes, fitrows, te)
            best = None
            for k in (1, 2, 3, 4, 6, 8, 12, 16):
                pi, th = fit_lcm(X[tr], sizes, k, seed)
                v = loglik(X[va], pi, th).mean()
                if best is None or v > best[1] + 1e-9: best = (k, v)
            k = best[0]
            pi, th = fit_lcm(X[fitrows], sizes, k, seed)
            lcm_te = -loglik(X[te], pi, th)
            out = {"default": np.array(d["net_test"]), "lcm": lcm_te,
                   "loss+lcm": loss_te + lcm_te, "gmm": np.array(d["gmm_test"])}
            for m, sc in out.items():
                res.setdefault(m, []).append((ap(y, sc), auc(y, sc)))
            res.setdefault("k", []).append((k, 0))
        print(f"## {name}")
        for m, v in res.items():
            a = np.array(v)
            print(f"{m:10s} {a[:,0].mean():6.2f} ± {a[:,0].std():5.2f} [" + " ".join(f"{x:.2f}" for x in a[:,0]) + f"] AUC {a[:,1].mean():.2f}")
if __name__ == "__main__":
    main()
