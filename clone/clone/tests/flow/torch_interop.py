"""A kiln checkpoint in a plain PyTorch GPT-2 (nn.Linear, nn.LayerNorm, written from the
GPT-2 paper's description, not from kiln's code): prints the largest difference between its
logits and kiln's (`kiln sample --logits`).  argv: checkpoint, kiln logits file, token ids."""
import json
import math
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, d in head.items():
        assert d["dtype"] == "F32", name
        lo, hi = d["data_offsets"]
        tensors[name] = torch.frombuffer(bytearray(data[lo:hi]), dtype=torch.float32).reshape(d["shape"])
    return tensors, meta


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        heads = lambda t: t.view(B, T, self.H, C // self.H).transpose(1, 2)
        y = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True) \
            if hasattr(F, "scaled_dot_product_attention") else None
        if y is None:
            q, k, v = heads(q), heads(k), heads(v)
            att = q @ k.transpose(-2, -1) / math.sqrt(C // self.H)
            att = att.masked_fill(torch.ones(T, T).tril() == 0, float("-inf")).softmax(-1)
            y = att @ v
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["n_embd"]
        self.wte, self.wpe = nn.Embedding(cfg["vocab"], C), nn.Embedding(cfg["n_ctx"], C)
        self.h = nn.ModuleList(Block(C, cfg["n_head"]) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(C)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.t()  # tied head

    @torch.no_grad()
    def load_hf(self, t):
        """Hugging Face GPT-2 names; Conv1D weights are [in, out], nn.Linear wants [out, in]."""
        self.wte.weight.copy_(t["transformer.wte.weight"])
        self.wpe.weight.copy_(t["transformer.wpe.weight"])
        for i, b in enumerate(self.h):
            p = f"transformer.h.{i}."
            for mine, theirs in [(b.ln_1, "ln_1"), (b.ln_2, "ln_2")]:
                mine.weight.copy_(t[p + theirs + ".weight"]), mine.bias.copy_(t[p + theirs + ".bias"])
            for mine, theirs in [(b.c_attn, "attn.c_attn"), (b.c_proj, "attn.c_proj"),
                                 (b.c_fc, "mlp.c_fc"), (b.mlp_proj, "mlp.c_proj")]:
                mine.weight.copy_(t[p + theirs + ".weight"].t()), mine.bias.copy_(t[p + theirs + ".bias"])
        self.ln_f.weight.copy_(t["transformer.ln_f.weight"]), self.ln_f.bias.copy_(t["transformer.ln_f.bias"])


tensors, meta = read_safetensors(sys.argv[1])
model = GPT2(json.loads(meta["config"])).eval()
model.load_hf(tensors)
tokens = torch.tensor([[int(x) for x in sys.argv[3].split(",")]])
with torch.no_grad():
    ours = model(tokens)[0].double()
theirs = torch.tensor([[float(v) for v in line.split()] for line in open(sys.argv[2])], dtype=torch.float64)
assert theirs.shape == ours.shape, (theirs.shape, ours.shape)
print("max_abs_diff %.3g max_abs_logit %.3g" % ((ours - theirs).abs().max().item(), ours.abs().max().item()))
