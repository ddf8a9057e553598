#!/usr/bin/env python3
"""Why nl4_sh64_v1 shifts its grid by 4: relative squared error of three SmolLM2 matrices (first
20,000 blocks of 32, dithered F32 base) under the IQ4_NL grid with a per-block searched scale,
alone (key 0) and with a per-block choice of the grid or the grid shifted by K (keys 2..7).
A design aid, not a pinned encoder (scales are not rounded to binary16 here).
  "$HCT_PEERS_PYTHON" compat-tests/quality/shift_constant.py "$HCT_SMOLLM2_DITHERED"
"""
import numpy as np, sys
from gguf import GGUFReader
r = GGUFReader(sys.argv[1])
G = np.array([-127,-104,-83,-65,-49,-35,-22,-10,1,13,25,38,53,69,89,113],dtype=np.float64)
ts = [t for t in r.tensors if t.name in ("blk.5.ffn_down.weight","blk.10.attn_q.weight","blk.3.ffn_up.weight")]
def best(x, grid):
    # x: (B,32); search scale over candidates m/(g*(32+t)/32)
    m = x[np.arange(len(x)), np.abs(x).argmax(1)]
    bestE = (x**2).sum(1)
    for base in (grid[0], grid[-1]):
        for t in range(-8,9):
            d = m/(base*(32+t)/32)
            d = np.where(d==0,1e-30,d)
            for it in range(2):
                vals = d[:,None]*grid[None,:]
                idx = np.abs(x[:,:,None]-vals[:,None,:]).argmin(2)
                q = grid[idx]
                e = ((x-d[:,None]*q)**2).sum(1)
                bestE = np.minimum(bestE,e)
                d = (x*q).sum(1)/np.maximum((q*q).sum(1),1e-30)
    return bestE
for t in ts:
    x = np.array(t.data,dtype=np.float64).reshape(-1,32)[:20000]
    tot = (x**2).sum()
    e0 = best(x,G)
    res = {0: e0.sum()/tot}
    for K in (2,3,4,5,6,7):
        e1 = best(x,G+K)
        res[K] = np.minimum(e0,e1).sum()/tot
    print(t.name, {k: round(v*1e3,4) for k,v in res.items()})
