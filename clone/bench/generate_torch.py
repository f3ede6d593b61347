#!/usr/bin/python3
"""generate_torch — the PyTorch side of bench/generate.c: the same model (tests/torch_gpt.py's
layout, float32, GPT-2 initialisation), R rows of a P-token prompt then N new tokens each,
a key/value cache, temperature-1 sampling, on --threads threads.  With --logprobs 1, RL
rollouts as bench/generate.c makes them: R / K prompts repeated K times, and each drawn
token's log_softmax gathered in the loop.  Prints one JSON line in bench/generate.c's format
(new tokens per second over the whole run, prompt included).

    /usr/bin/python3 bench/generate_torch.py [--rows 64 --new 64 --prompt 16 --threads 2]
                                             [--logprobs 1 --k 4]"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_gpt import GPT  # noqa: E402


@torch.no_grad()
def step(model, tok, pos, cache):
    """Logits [R, T, V] for tokens tok [R, T] at positions pos.. pos+T-1; keys and values of
    every layer appended to cache (a list of [k, v], each [R, H, t, hd])."""
    p, C, H = model.p, model.C, model.H
    R, T = tok.shape
    h = p["transformer.wte.weight"][tok] + p["transformer.wpe.weight"][pos:pos + T]
    for l in range(model.L):
        q = lambda s: p[f"transformer.h.{l}.{s}"]
        a = F.layer_norm(h, (C,), q("ln_1.weight"), q("ln_1.bias"), 1e-5)
        qkv = torch.addmm(q("attn.c_attn.bias"), a.view(-1, C), q("attn.c_attn.weight"))
        qq, kk, vv = qkv.view(R, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
        if cache[l] is None:
            cache[l] = [kk, vv]
        else:
            cache[l] = [torch.cat([cache[l][0], kk], 2), torch.cat([cache[l][1], vv], 2)]
        K, V = cache[l]
        att = (qq @ K.transpose(-2, -1)) * (1.0 / math.sqrt(C // H))
        if T > 1:  # a query at position pos + i sees keys up to pos + i
            future = torch.arange(K.shape[2]) > (pos + torch.arange(T)).unsqueeze(1)
            att = att.masked_fill(future, float("-inf"))
        y = (att.softmax(-1) @ V).transpose(1, 2).reshape(R * T, C)
        h = h + torch.addmm(q("attn.c_proj.bias"), y, q("attn.c_proj.weight")).view(R, T, C)
        a = F.layer_norm(h, (C,), q("ln_2.weight"), q("ln_2.bias"), 1e-5)
        f = F.gelu(torch.addmm(q("mlp.c_fc.bias"), a.view(-1, C), q("mlp.c_fc.weight")),
                   approximate="tanh")
        h = h + torch.addmm(q("mlp.c_proj.bias"), f, q("mlp.c_proj.weight")).view(R, T, C)
    h = F.layer_norm(h, (C,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], 1e-5)
    return h @ p["transformer.wte.weight"].t()


@torch.no_grad()
def generate(model, prompts, n_new, gen, logprobs=False):
    cache = [None] * model.L
    logits = step(model, prompts, 0, cache)[:, -1]
    pos, out, lp = prompts.shape[1], [], []
    for i in range(n_new):
        tok = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
        out.append(tok)
        if logprobs:
            lp.append(torch.log_softmax(logits, -1).gather(1, tok))
        if i + 1 < n_new:
            logits = step(model, tok, pos, cache)[:, -1]
            pos += 1
    return torch.cat(out, 1), (torch.cat(lp, 1) if logprobs else None)


def main():
    ap = argparse.ArgumentParser()
    for name, default in [("layers", 4), ("dim", 256), ("heads", 4), ("ctx", 256),
                          ("vocab", 259), ("rows", 64), ("new", 64), ("prompt", 16),
                          ("threads", 2), ("reps", 5), ("logprobs", 0), ("k", 1)]:
        ap.add_argument("--" + name, type=int, default=default)
    o = ap.parse_args()
    torch.set_num_threads(o.threads)
    torch.manual_seed(1)
    model = GPT(o.layers, o.dim, o.heads, o.ctx, o.vocab)
    prompts = (torch.arange(o.rows * o.prompt) * 37 % 256).view(o.rows, o.prompt)
    if o.logprobs:  # rows / k prompts, each k times (bench/generate.c's rollouts)
        prompts = prompts[:o.rows // o.k].repeat_interleave(o.k, 0)
    times = []
    for r in range(o.reps):
        gen = torch.Generator().manual_seed(r)
        t = time.perf_counter()
        generate(model, prompts, o.new, gen, bool(o.logprobs))
        times.append(time.perf_counter() - t)
    times.sort()
    toks = o.rows * o.new
    print(json.dumps({"layers": o.layers, "dim": o.dim, "heads": o.heads, "ctx": o.ctx,
                      "vocab": o.vocab, "rows": o.rows, "prompt": o.prompt, "new": o.new,
                      "threads": o.threads, "logprobs": o.logprobs, "k": o.k,
                      "torch": torch.__version__,
                      "best_s": round(times[0], 4), "median_s": round(times[len(times) // 2], 4),
                      "tokens_per_s_best": round(toks / times[0]),
                      "tokens_per_s_median": round(toks / times[len(times) // 2])}))


if __name__ == "__main__":
    main()
