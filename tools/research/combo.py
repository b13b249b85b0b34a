"""Combinations of the library default with the one-hot GMM on the `combo` dumps.

`python3 tools/research/combo.py cmc solar ...` prints AP x 100 per seed and the mean.
Standardisation uses validation inliers only (no labels)."""
import json, sys, glob
import numpy as np

def ap(y, s):
    y = np.asarray(y, bool); s = np.asarray(s, float)
    o = np.argsort(-s, kind="mergesort"); s, y = s[o], y[o]
    # group ties as scikit-learn does
    idx = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[idx]; fp = idx + 1 - tp
    prec = tp / (tp + fp); rec = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0, rec]) * prec)) * 100

def auc(y, s):
    y = np.asarray(y, bool); s = np.asarray(s, float)
    # average ranks for ties
    order = np.argsort(s); ss = s[order]; ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]: j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1; i = j + 1
    n1 = y.sum(); n0 = len(y) - n1
    return (ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0) * 100

def z(val, x, robust=False):
    val = np.asarray(val); x = np.asarray(x)
    if robust:
        m = np.median(val); s = np.median(np.abs(val - m)) * 1.4826
    else:
        m = val.mean(); s = val.std()
    return (x - m) / max(s, 1e-12)

def methods(d):
    y = d["labels"]
    nv, nt = np.array(d["net_val"]), np.array(d["net_test"])
    gv, gt = np.array(d["gmm_val"]), np.array(d["gmm_test"])
    hv = np.array(d["held_val"])
    out = {
        "default": nt, "gmm": gt,
        "z(net)+z(gmm) in-sample val": z(nv, nt) + z(gv, gt),
        "z(net)+z(gmm) held val": z(nv, nt) + z(hv, gt),
        "robust z sum": z(nv, nt, True) + z(gv, gt, True),
        "robust z held": z(nv, nt, True) + z(hv, gt, True),
        "max z held": np.maximum(z(nv, nt), z(hv, gt)),
    }
    # The gate the library adopted (src/onehot.rs): held-out minus in-sample mean GMM score
    # of the validation inliers, in in-sample standard deviations; the z-sum when below 1.
    gap = (hv.mean() - gv.mean()) / max(gv.std(), 1e-12)
    out["gated z sum (gap < 1)"] = out["z(net)+z(gmm) held val"] if gap < 1 else nt
    return y, out, gap

def main():
    for name in sys.argv[1:]:
        files = sorted(glob.glob(f"research/combo/{name}-*.json"))
        if not files: continue
        rows, gaps = {}, []
        for f in files:
            d = json.load(open(f))
            y, ms, gap = methods(d)
            gaps.append(gap)
            for k, s in ms.items():
                rows.setdefault(k, []).append((ap(y, s), auc(y, s)))
        print(f"## {name} ({len(files)} seeds), gap per seed: " + " ".join(f"{g:.2f}" for g in gaps))
        for k, v in rows.items():
            a = np.array(v)
            print(f"{k:32s} AP {a[:,0].mean():6.2f} ± {a[:,0].std():5.2f} [" + " ".join(f"{x:.2f}" for x in a[:,0]) + f"]  AUC {a[:,1].mean():6.2f}")

if __name__ == "__main__":
    main()
