import sys, os
from feat4 import *
def pool_s(f):
    itr, iva, ite = f['idx']; rtr, rva, rte = f['rows']
    m = -marginals(f['C'], f['K'], np.concatenate([rtr, rva]))
    return loss_total(f)[ite] + m[rte]
if __name__ == '__main__':
    name = sys.argv[1]
    V = {'pool': pool_s, 'msma': msma(emb_msma),
         'z(pool)+z(msma)': combo(pool_s, msma(emb_msma)),
         'z(pool)+0.5z(msma)': (lambda f: wcombo(2/3, pool_s, msma(emb_msma))(f)),
         'joint_gmm[loglossL,norms]': msma(lambda f: np.hstack([np.log(lossf(DR)(f).sum(2)+1e-9), emb_msma(f)])),
         'joint_gmm[lossL,norms]': msma(lambda f: np.hstack([lossf(DR)(f).sum(2), emb_msma(f)])),
    }
    run2(name, TAG, V)
