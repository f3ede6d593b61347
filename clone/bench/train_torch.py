#!/usr/bin/python3
"""train_torch — the PyTorch baseline for bench/train.sh: the same model (tests/torch_gpt.py),
config and random batch as build/rel/bench/train_kiln, one training step = forward,
backward, clip_grad_norm_, AdamW.  Prints one JSON line like train_kiln.
Run with OMP_WAIT_POLICY=PASSIVE (train.sh sets it): PyTorch at its best on this machine."""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_gpt import GPT, make_adamw  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--dim", type=int, default=256)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--vocab", type=int, default=256)
ap.add_argument("-B", type=int, default=8)
ap.add_argument("-T", type=int, default=256)
ap.add_argument("--steps", type=int, default=10)
ap.add_argument("--warmup", type=int, default=2)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(1)
model = GPT(a.layers, a.dim, a.heads, a.T, a.vocab)
opt = make_adamw(model, 1e-4)
x = torch.randint(0, a.vocab, (a.B, a.T))
y = torch.randint(0, a.vocab, (a.B, a.T))
mask = torch.ones(a.B, a.T)
times = []
for i in range(a.warmup + a.steps):
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = model.loss(model.logits(model.hidden(x)), y, mask)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    if i >= a.warmup:
        times.append(time.perf_counter() - t0)
times.sort()
n = len(times)
med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
params = sum(t.numel() for t in model.parameters())
flops = 6 * params + 12 * a.layers * a.T * a.dim
tps = a.B * a.T / med
print(json.dumps({"impl": "torch", "params": params, "threads": torch.get_num_threads(),
                  "step_ms": round(med * 1e3, 1), "min_ms": round(times[0] * 1e3, 1),
                  "tokens_per_s": round(tps), "gflops": round(tps * flops / 1e9, 1),
                  "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "loss": round(loss.item(), 4)}))
