#!/usr/bin/python3
"""embed_torch — the PyTorch side of bench/embed.sh: the same GPT (tests/torch_gpt.py) in
eval mode under torch.no_grad, 64 rows a forward, mean pooling and normalisation, on the
same shapes as bench/embed_kiln.c; and numpy's exact search (matrix product, argpartition,
then sorting the 10) over the same sizes.  Prints two JSON lines."""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_gpt import GPT  # noqa: E402

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
N, T = 1024, 128
model = GPT(4, 256, 4, T, 256).eval()
best = float("inf")
with torch.no_grad():
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(0, N, 64):
            x = torch.randint(0, 256, (64, T))
            h = model.hidden(x).mean(dim=1)
            F.normalize(h, dim=-1)
        best = min(best, time.perf_counter() - t0)
print(json.dumps({"bench": "embed", "rows": N, "T": T, "seconds": round(best, 4),
                  "vectors_per_s": round(N / best, 1)}))

rng = np.random.default_rng(3)
V = rng.standard_normal((100000, 256), dtype=np.float32)
V /= np.linalg.norm(V, axis=1, keepdims=True)
Q = rng.standard_normal((1000, 256), dtype=np.float32)
Q /= np.linalg.norm(Q, axis=1, keepdims=True)
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    S = Q @ V.T
    top = np.argpartition(-S, 10, axis=1)[:, :10]
    order = np.argsort(-np.take_along_axis(S, top, axis=1), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"bench": "search", "vectors": 100000, "queries": 1000, "dim": 256,
                  "seconds": round(best, 4), "queries_per_s": round(1000 / best, 1)}))
