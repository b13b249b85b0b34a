import sys, os
from feat3 import *
DR = os.environ.get('DR', '4'); TAG = os.environ.get('TAG', 'w256')
def loss_total(f): return lossf(DR)(f).sum((1, 2))
def marg_nll_dump(f):
    rtr, rva, rte = f['rows']; fit = np.concatenate([rtr, rva])
    m = -marginals(f['C'], f['K'], fit)
    return np.concatenate([m[rtr], m[rva], m[rte]])
def direct(g):
    def s(f): itr, iva, ite = f['idx']; return g(f)[ite]
    return s
if __name__ == '__main__':
    name = sys.argv[1]
    V = {'msma': msma(emb_msma), 'marg': marg, 'loss_sum': direct(loss_total),
         'pool(loss+marg)': direct(lambda f: loss_total(f) + marg_nll_dump(f)),
         'pool(0.5loss+marg)': direct(lambda f: 0.5*loss_total(f) + marg_nll_dump(f)),
         'z(loss)+z(marg)': combo(direct(loss_total), marg),
         'z(loss)+z(msma)': combo(direct(loss_total), msma(emb_msma)),
         'z(loss)+z(marg)+z(msma)': combo(direct(loss_total), marg, msma(emb_msma)),
    }
    run2(name, TAG, V)
