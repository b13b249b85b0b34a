import sys
from feat_analysis import *
def logfreq(f):
    C, K = f['C'], f['K']; rtr, rva, rte = f['rows']; fit = np.concatenate([rtr, rva])
    out = np.zeros(C.shape, float)
    for j in range(C.shape[1]):
        cnt = np.bincount(C[fit, j][C[fit, j] >= 0], minlength=K[j]) + 1.0
        lp = np.log(cnt / cnt.sum())
        out[:, j] = np.where(C[:, j] >= 0, lp[np.maximum(C[:, j], 0)], np.log(1.0 / cnt.sum()))
    return out
def by_rows(featf):
    """embedding indexed by table row -> by dump index"""
    def g(f):
        E = featf(f); rtr, rva, rte = f['rows']
        return np.vstack([E[rtr], E[rva], E[rte]])
    return g
def joint(f):
    return np.hstack([emb_msma(f), by_rows(logfreq)(f)])
def wcombo(w, a, b):
    def fn(f):
        f2 = dict(f); itr, iva, ite = f['idx']; rtr, rva, rte = f['rows']
        f2['idx'] = (itr, iva, np.concatenate([iva, ite])); f2['rows'] = (rtr, rva, np.concatenate([rva, rte]))
        out = 0
        for ww, g in ((w, a), (1-w, b)):
            s = g(f2); out = out + ww * zs(s[:len(iva)], s[len(iva):])
        return out
    return fn
if __name__ == '__main__':
    name = sys.argv[1]
    V = {'msma': msma(emb_msma), 'marg': marg,
         'logfreq_gmm': msma(by_rows(logfreq)),
         'joint_norm_logfreq': msma(joint),
         'joint_diag': msma(joint, cov='diag'),
         'msma.3+marg.7': wcombo(0.3, msma(emb_msma), marg),
         'msma.5+marg.5': wcombo(0.5, msma(emb_msma), marg),
    }
    run(name, 'w256', V)
