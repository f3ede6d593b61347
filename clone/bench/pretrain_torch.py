#!/usr/bin/python3
"""pretrain_torch — the PyTorch side of bench/pretrain.sh: the kiln model (tests/torch_gpt.py)
trained on the very batches kiln trains on, from the same initial weights, with kiln's
optimizer (AdamW 0.9/0.95, decay 0.1 on matrices, clipping at 1, warm-up + cosine to lr/10).

  pretrain_torch.py init OUT.safetensors --layers L --dim C --heads H --ctx T --vocab V
  pretrain_torch.py train INIT.safetensors TRAIN.jsonl VAL.jsonl --steps N --every E --lr X
      (TRAIN/VAL.jsonl: `kiln show --full` of batch records)  -> metrics JSON lines on stdout
"""
import argparse
import json
import math
import os
import struct
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from torch_gpt import GPT, make_adamw  # noqa: E402


def save_safetensors(path, tensors, meta):
    head, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().astype("<f4").tobytes()
        head[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(head, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__")
    data = raw[8 + n:]
    return {k: torch.frombuffer(bytearray(data[v["data_offsets"][0]:v["data_offsets"][1]]),
                                dtype=torch.float32).reshape(v["shape"]) for k, v in head.items()}, meta


def batches(path):
    for line in open(path):
        r = json.loads(line)
        if r.get("t") == "batch":
            yield (torch.tensor(r["x"]["data"]), torch.tensor(r["y"]["data"]),
                   torch.tensor(r["mask"]["data"], dtype=torch.float32))


def emit(record):  # compact, like kiln show, so one sed handles both
    print(json.dumps(record, separators=(",", ":")))


def lr_at(step, lr, warmup, total):  # lib/optim.c
    if step < warmup:
        return lr * (step + 1) / warmup
    if total <= warmup:
        return lr
    p = min(1.0, (step - warmup) / (total - warmup))
    return lr / 10 + 0.5 * (lr - lr / 10) * (1 + math.cos(math.pi * p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("files", nargs="+")
    for k in ("layers", "dim", "heads", "ctx", "vocab", "steps", "every", "seed"):
        ap.add_argument("--" + k, type=int, default=1)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.cmd == "init":
        torch.manual_seed(a.seed)
        m = GPT(a.layers, a.dim, a.heads, a.ctx, a.vocab)
        cfg = {"n_layer": a.layers, "n_embd": a.dim, "n_head": a.heads, "n_ctx": a.ctx, "vocab": a.vocab}
        save_safetensors(a.files[0], m.p, {"format": "pt", "config": json.dumps(cfg)})
        return
    init, train, val = a.files
    t, meta = load_safetensors(init)
    cfg = json.loads(meta["config"])
    m = GPT(cfg["n_layer"], cfg["n_embd"], cfg["n_head"], cfg["n_ctx"], cfg["vocab"])
    with torch.no_grad():
        for name, p in m.p.items():
            p.copy_(t[name])
    opt = make_adamw(m, a.lr)
    warmup = min(100, a.steps // 10)
    val_batches = list(batches(val))
    t0, losses = time.time(), []
    for step, (x, y, mask) in enumerate(batches(train)):
        if step == a.steps:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a.lr, warmup, a.steps)
        opt.zero_grad(set_to_none=True)
        loss = m.loss(m.logits(m.hidden(x)), y, mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        done = step + 1
        if done % 10 == 0:
            emit({"t": "metrics", "stage": "train", "step": done,
                  "loss": sum(losses) / len(losses), "elapsed_s": time.time() - t0})
            losses = []
        if done % a.every == 0 or done == a.steps:
            with torch.no_grad():
                nll = count = 0.0
                for vx, vy, vm in val_batches:
                    ce = torch.nn.functional.cross_entropy(
                        m.logits(m.hidden(vx)).reshape(-1, cfg["vocab"]).double(), vy.reshape(-1),
                        reduction="none")
                    nll += (ce * vm.reshape(-1).double()).sum().item()
                    count += vm.sum().item()
            emit({"t": "metrics", "stage": "eval", "split": "val", "step": done, "loss": nll / count})
        sys.stdout.flush()


main()
