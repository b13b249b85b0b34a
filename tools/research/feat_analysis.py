import sys, json, numpy as np, warnings
from common import *
from classical import marginals
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
warnings.filterwarnings('ignore')

def loadfeat(name, seed, tag):
    d = f'research/feat/{name}-{seed}-{tag}'
    m = json.load(open(f'{d}/meta.json'))
    L, F = m['levels'], m['features']
    sq = np.fromfile(f'{d}/sq.f32', np.float32).reshape(-1, L, F).astype(np.float64)
    hot = np.fromfile(f'{d}/hot.f32', np.float32).reshape(-1, L, F).astype(np.float64)
    parts = {}; o = 0
    for p in m['parts']:
        n = len(p['rows']); parts[p['part']] = (np.arange(o, o+n), np.array(p['rows']), np.array(p['labels'])); o += n
    return m, sq, hot, parts

def gmm_select(Xtr, Xva, ks=(3,5,7,9), seed=0, cov='full', reg=1e-6):
    sc = StandardScaler().fit(np.vstack([Xtr, Xva]))
    best, bk = -np.inf, None
    for k in ks:
        g = GaussianMixture(k, covariance_type=cov, reg_covar=reg, random_state=seed, max_iter=200).fit(sc.transform(Xtr))
        v = g.score_samples(sc.transform(Xva)).mean()
        if v > best: best, bk = v, k
    g = GaussianMixture(bk, covariance_type=cov, reg_covar=reg, random_state=seed, max_iter=200).fit(sc.transform(np.vstack([Xtr, Xva])))
    return lambda X: -g.score_samples(sc.transform(X)), bk

def zs(s_val, s):  # standardize by validation inlier scores
    return (s - np.median(s_val)) / (np.percentile(s_val, 75) - np.percentile(s_val, 25) + 1e-12)

def run(name, tag, variants):
    X, y = load(name); C, K, Z = codes(name, X, y)
    res = {}
    for seed in SEEDS:
        try: m, sq, hot, parts = loadfeat(name, seed, tag)
        except FileNotFoundError: continue
        itr, rtr, _ = parts['train']; iva, rva, _ = parts['val']; ite, rte, lte = parts['test']
        O = onehot(C, K, Z)
        feats = dict(sq=sq, hot=hot, O=O, C=C, K=K, rows=(rtr, rva, rte), idx=(itr, iva, ite), seed=seed)
        for vname, fn in variants.items():
            s = fn(feats)
            res.setdefault(vname, []).append(metrics(lte, s))
    for vname, v in res.items():
        a = np.array(v)
        print(f"{name:7s} {vname:28s} AP {a[:,0].mean():6.2f} ± {a[:,0].std():5.2f} [{' '.join(f'{x:5.1f}' for x in a[:,0])}]  AUC {a[:,1].mean():5.1f}", flush=True)

def emb_msma(f):
    return np.sqrt(f['sq'].sum(2))
def msma(embf, ks=(3,5,7,9), cov='full', tf=None):
    def fn(f):
        E = embf(f); 
        if tf: E = tf(E)
        itr, iva, ite = f['idx']
        sc, k = gmm_select(E[itr], E[iva], ks, f['seed'], cov)
        return sc(E[ite])
    return fn
def onehot_gmm(f):
    rtr, rva, rte = f['rows']; O = f['O']
    sc, k = gmm_select(O[rtr], O[rva], seed=f['seed'], reg=1e-6)
    return sc(O[rte])
def marg(f):
    rtr, rva, rte = f['rows']
    return -marginals(f['C'], f['K'], np.concatenate([rtr, rva]))[rte]

def combo(*fns):
    """sum of validation-standardised scores; needs val scores: recompute on val"""
    def fn(f):
        # score val and test with each member: members return test scores only; hack: evaluate twice
        out = 0
        for g in fns:
            f2 = dict(f); itr, iva, ite = f['idx']; rtr, rva, rte = f['rows']
            f2['idx'] = (itr, iva, np.concatenate([iva, ite])); f2['rows'] = (rtr, rva, np.concatenate([rva, rte]))
            s = g(f2); sv, st = s[:len(iva)], s[len(iva):]
            out = out + zs(sv, st)
        return out
    return fn

if __name__ == '__main__':
    name = sys.argv[1]; tag = sys.argv[2] if len(sys.argv) > 2 else 'w256'
    levels_low = lambda E: E
    V = {
        'msma': msma(emb_msma),
        'msma_log': msma(emb_msma, tf=np.log),
        'pergroup_all_log_diag': msma(lambda f: np.log(f['sq'].reshape(len(f['sq']), -1) + 1e-12), cov='diag'),
        'pergroup_L0,9,19_log': msma(lambda f: np.log(f['sq'][:, [0, 9, 19], :].reshape(len(f['sq']), -1) + 1e-12)),
        'pergroup_L19_log': msma(lambda f: np.log(f['sq'][:, 19, :] + 1e-12)),
        'pergroup_L0_log': msma(lambda f: np.log(f['sq'][:, 0, :] + 1e-12)),
        'hot_L19': msma(lambda f: f['hot'][:, 19, :]),
        'onehot_gmm': onehot_gmm,
        'marg': marg,
        'msma+marg': combo(msma(emb_msma), marg),
        'msma+onehot': combo(msma(emb_msma), onehot_gmm),
        'msma+marg+onehot': combo(msma(emb_msma), marg, onehot_gmm),
        'marg+onehot': combo(marg, onehot_gmm),
    }
    run(name, tag, V)
