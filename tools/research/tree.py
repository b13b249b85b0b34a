"""Pairwise priors for the default score: a single full-covariance Gaussian on one-hot rows
(a pairwise energy) and a Chow-Liu tree (a discrete density in nats), each alone and added
to the network's denoising loss in place of the independent-columns prior.
`python3 tools/research/tree.py cmc solar`"""
import json, sys
import numpy as np
sys.path.insert(0, "tools/research")
from combo import ap, auc, z
from lcm import load, codes, independent_prior

def onehot(X, sizes):
    off = np.r_[0, np.cumsum(sizes)[:-1]]
    O = np.zeros((len(X), sum(sizes)))
    for j in range(X.shape[1]): O[np.arange(len(X)), off[j] + X[:, j]] = 1
    return O

def gauss(O_fit, reg=1e-6):
    """A full-covariance Gaussian fitted on O_fit: returns the scorer (half the squared
    Mahalanobis distance, minus the log-density up to a constant)."""
    mu = O_fit.mean(0); C = np.cov(O_fit.T, bias=True) + reg * np.eye(O_fit.shape[1])
    P = np.linalg.inv(C)
    def score(O):
        D = O - mu
        return 0.5 * np.einsum("ij,jk,ik->i", D, P, D)
    return score

def chow_liu(Xf, sizes, alpha=1.0):
    n, d = Xf.shape
    marg = [(np.bincount(Xf[:, j], minlength=K) + alpha) / (n + alpha * K) for j, K in enumerate(sizes)]
    joint = {}
    mi = np.zeros((d, d))
    for a in range(d):
        for b in range(a + 1, d):
            c = np.zeros((sizes[a], sizes[b]))
            np.add.at(c, (Xf[:, a], Xf[:, b]), 1)
            p = (c + alpha / sizes[b]) / (n + alpha * sizes[a])  # smoothed joint
            p /= p.sum()
            joint[(a, b)] = p
            pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
            mi[a, b] = mi[b, a] = (p * np.log(p / (pa * pb))).sum()
    # maximum spanning tree (Prim) rooted at 0
    inn = {0}; parent = {}
    while len(inn) < d:
        best = max(((mi[i, j], i, j) for i in inn for j in range(d) if j not in inn))
        parent[best[2]] = best[1]; inn.add(best[2])
    return marg, joint, parent

def tree_nll(model, X):
    marg, joint, parent = model
    out = -np.log(marg[0][X[:, 0]])
    for j, p in parent.items():
        a, b = min(j, p), max(j, p)
        J = joint[(a, b)]
        cond = J / J.sum(0 if j == a else 1, keepdims=True)  # p(x_j | x_p)
        out -= np.log(cond[X[:, a], X[:, b]])
    return out

def main():
    for name in sys.argv[1:]:
        head, rows = load(name)
        X, sizes = codes(rows, len(head) - 1)
        O = onehot(X, sizes)
        res = {}
        for seed in range(42, 47):
            try: d = json.load(open(f"research/combo/{name}-{seed}.json"))
            except FileNotFoundError: continue
            s = json.load(open(f"research/splits/{name}-{seed}.json"))
            tr, va, te = (np.array(s[k]) for k in ("train", "val", "test"))
            y = np.array(d["labels"], bool); fr = np.r_[tr, va]
            loss = np.array(d["net_test"]) - independent_prior(X, sizes, fr, te)
            g = gauss(O[fr])(O[te]); t = tree_nll(chow_liu(X[fr], sizes), X[te])
            on_train = gauss(O[tr]); gtr_v, gtr_t = on_train(O[va]), on_train(O[te])
            nv = np.array(d["net_val"]); nt = np.array(d["net_test"])
            out_z = {"z(net)+z(gauss)": z(nv, nt) + z(gtr_v, gtr_t),
                     "z(net)+z(gmm)": z(nv, nt) + z(np.array(d["held_val"]), np.array(d["gmm_test"])),
                     "z(net)+0.5z(gauss)": z(nv, nt) + 0.5 * z(gtr_v, gtr_t)}
            out = {"default": np.array(d["net_test"]), "gmm": np.array(d["gmm_test"]),
                   "gauss k=1": g, "chow-liu": t, "loss+chow-liu": loss + t, "loss only": loss, **out_z}
            for m, sc in out.items(): res.setdefault(m, []).append((ap(y, sc), auc(y, sc)))
        print(f"## {name}")
        for m, v in res.items():
            a = np.array(v)
            print(f"{m:14s} {a[:,0].mean():6.2f} ± {a[:,0].std():5.2f} [" + " ".join(f"{x:.2f}" for x in a[:,0]) + f"] AUC {a[:,1].mean():.2f}")

if __name__ == "__main__":
    main()
