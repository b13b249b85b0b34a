import sys
from feat_analysis import *
from feat2 import *
def lossf(draws=4):
    def g(f):
        d = f['dir']; L, F = f['sq'].shape[1], f['sq'].shape[2]
        return np.fromfile(f'{d}/loss{draws}.f32', np.float32).reshape(-1, L, F).astype(np.float64)
    return g
def score_direct(fn):
    def s(f):
        E = fn(f); itr, iva, ite = f['idx']; return E[ite]
    return s
import feat_analysis, os
DR = os.environ.get('DR', '4')
_orig = feat_analysis.loadfeat
def run2(name, tag, variants):
    X, y = load(name); C, K, Z = codes(name, X, y)
    res = {}
    for seed in SEEDS:
        try: m, sq, hot, parts = loadfeat(name, seed, tag)
        except FileNotFoundError: continue
        d = f'research/feat/{name}-{seed}-{tag}'
        import os
        if not os.path.exists(f'{d}/loss{DR}.f32'): continue
        itr, rtr, _ = parts['train']; iva, rva, _ = parts['val']; ite, rte, lte = parts['test']
        O = onehot(C, K, Z)
        f = dict(sq=sq, hot=hot, O=O, C=C, K=K, rows=(rtr, rva, rte), idx=(itr, iva, ite), seed=seed, dir=d)
        for vname, fn in variants.items():
            res.setdefault(vname, []).append(metrics(lte, fn(f)))
    for vname, v in res.items():
        a = np.array(v)
        print(f"{name:7s} {vname:28s} AP {a[:,0].mean():6.2f} ± {a[:,0].std():5.2f} [{' '.join(f'{x:5.1f}' for x in a[:,0])}]  AUC {a[:,1].mean():5.1f}", flush=True)
if __name__ == '__main__':
    name = sys.argv[1]
    L = lossf(DR)
    V = {'msma': msma(emb_msma), 'marg': marg,
         'loss_sum': score_direct(lambda f: L(f).sum((1, 2))),
         'loss_sum_hi10': score_direct(lambda f: L(f)[:, :10].sum((1, 2))),
         'loss_sum_lo10': score_direct(lambda f: L(f)[:, 10:].sum((1, 2))),
         'loss_levels_gmm_log': msma(lambda f: np.log(L(f).sum(2) + 1e-9)),
         'loss_levels_gmm': msma(lambda f: L(f).sum(2)),
         'loss_groups_log_gmm': msma(lambda f: np.log(L(f).sum(1) + 1e-9)),
         'msma+loss_sum': combo(msma(emb_msma), score_direct(lambda f: L(f).sum((1, 2)))),
    }
    run2(name, os.environ.get('TAG', 'w256'), V)
