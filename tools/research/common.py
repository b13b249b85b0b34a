import json, numpy as np, pandas as pd, gzip
from sklearn.metrics import average_precision_score, roc_auc_score
import os
D = os.environ.get('GNSM_DATA_DIR', '../shared/data')
FILES = dict(bank='bank.csv', census='census.csv.gz', chess='chess.csv', cmc='cmc.csv', probe='probe.csv', solar='solar.csv', u2r='u2r.csv')
CONT = dict(census=['att3','att4','att37','att39','att41'])
SEEDS = [42,43,44,45,46]
def load(name):
    df = pd.read_csv(f'{D}/{FILES[name]}', dtype=str, keep_default_na=False)
    y = (df['label'] == '1').values
    X = df.drop(columns=['label'])
    return X, y
def codes(name, X, y):
    """per-column integer codes (vocab per reference rule) and continuous block"""
    cont = CONT.get(name, [])
    vocab_rows = np.ones(len(y), bool) if name == 'probe' else ~y
    cols = [c for c in X.columns if c not in cont]
    C = np.zeros((len(X), len(cols)), np.int32); K = []
    for j, c in enumerate(cols):
        cats = sorted(set(X[c].values[vocab_rows]))
        m = {v: i for i, v in enumerate(cats)}
        C[:, j] = [m.get(v, -1) for v in X[c].values]
        K.append(len(cats))
    Z = None
    if cont:
        Z = X[cont].astype(float).values
        mu = Z[~y].mean(0); sd = Z[~y].std(0)
        Z = (Z - mu) / sd
    return C, np.array(K), Z
def onehot(C, K, Z=None):
    off = np.concatenate([[0], np.cumsum(K)[:-1]])
    O = np.zeros((C.shape[0], K.sum()), np.float64)
    for j in range(C.shape[1]):
        ok = C[:, j] >= 0
        O[np.where(ok)[0], off[j] + C[ok, j]] = 1
    if Z is not None: O = np.hstack([Z, O])
    return O
def split(name, seed):
    return json.load(open(f'research/splits/{name}-{seed}.json'))
def metrics(y, s):
    return 100*average_precision_score(y, s), 100*roc_auc_score(y, s)
