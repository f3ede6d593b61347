"""The kiln model in PyTorch: the same GPT-2 architecture, parameter names and layout
(Hugging Face names, Conv1D weights [in, out]) as lib/gpt.c.  Used by tests/torch_parity.py
(reference values for the C parity test) and bench/train_torch.py (the speed baseline)."""
import math
import struct

import torch
import torch.nn.functional as F


def param_shapes(L, C, ctx, V, scalar_head=False):
    """(name, shape) in kiln's buffer order."""
    out = [("transformer.wte.weight", (V, C)), ("transformer.wpe.weight", (ctx, C))]
    per_layer = [("ln_1.weight", (C,)), ("ln_1.bias", (C,)),
                 ("attn.c_attn.weight", (C, 3 * C)), ("attn.c_attn.bias", (3 * C,)),
                 ("attn.c_proj.weight", (C, C)), ("attn.c_proj.bias", (C,)),
                 ("ln_2.weight", (C,)), ("ln_2.bias", (C,)),
                 ("mlp.c_fc.weight", (C, 4 * C)), ("mlp.c_fc.bias", (4 * C,)),
                 ("mlp.c_proj.weight", (4 * C, C)), ("mlp.c_proj.bias", (C,))]
    for suffix, shape in per_layer:  # kiln stacks each kind over layers
        for l in range(L):
            out.append((f"transformer.h.{l}.{suffix}", shape))
    out += [("transformer.ln_f.weight", (C,)), ("transformer.ln_f.bias", (C,))]
    if scalar_head:
        out.append(("score.weight", (1, C)))
    return out


class GPT(torch.nn.Module):
    def __init__(self, L, C, H, ctx, V, scalar_head=False, dtype=torch.float32):
        super().__init__()
        self.L, self.C, self.H = L, C, H
        self.names = [n for n, _ in param_shapes(L, C, ctx, V, scalar_head)]
        self.p = {}
        for name, shape in param_shapes(L, C, ctx, V, scalar_head):
            t = torch.nn.Parameter(torch.zeros(shape, dtype=dtype))
            self.p[name] = t
            self.register_parameter(name.replace(".", "_"), t)
        self.init_gpt2()

    @torch.no_grad()
    def init_gpt2(self):
        for name, t in self.p.items():
            if ".ln_" in name:
                t.fill_(1.0 if name.endswith("weight") else 0.0)
            elif t.dim() == 2:
                std = 0.02 / math.sqrt(2 * self.L) if name.endswith("c_proj.weight") else 0.02
                t.normal_(0.0, std)
            else:
                t.zero_()

    def hidden(self, x):
        p, C, H = self.p, self.C, self.H
        B, T = x.shape
        h = p["transformer.wte.weight"][x] + p["transformer.wpe.weight"][:T]
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        for l in range(self.L):
            q = lambda s: p[f"transformer.h.{l}.{s}"]
            a = F.layer_norm(h, (C,), q("ln_1.weight"), q("ln_1.bias"), 1e-5)
            qkv = torch.addmm(q("attn.c_attn.bias"), a.view(-1, C), q("attn.c_attn.weight"))
            qq, kk, vv = qkv.view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
            att = (qq @ kk.transpose(-2, -1)) * (1.0 / math.sqrt(C // H))
            att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
            y = (att @ vv).transpose(1, 2).reshape(B * T, C)
            h = h + torch.addmm(q("attn.c_proj.bias"), y, q("attn.c_proj.weight")).view(B, T, C)
            a = F.layer_norm(h, (C,), q("ln_2.weight"), q("ln_2.bias"), 1e-5)
            f = torch.addmm(q("mlp.c_fc.bias"), a.view(-1, C), q("mlp.c_fc.weight"))
            f = F.gelu(f, approximate="tanh")
            h = h + torch.addmm(q("mlp.c_proj.bias"), f, q("mlp.c_proj.weight")).view(B, T, C)
        return F.layer_norm(h, (C,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], 1e-5)

    def logits(self, hidden):
        return hidden @ self.p["transformer.wte.weight"].t()

    def loss(self, logits, y, mask):
        """Mean cross-entropy over the positions where mask is 1."""
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
        m = mask.reshape(-1).to(ce.dtype)
        return (ce * m).sum() / m.sum()

    def scalar_last(self, hidden, mask):
        """score.weight . hidden at each row's last mask-1 position."""
        T = mask.shape[1]
        idx = (torch.arange(T) * mask).argmax(dim=1)
        pooled = hidden[torch.arange(hidden.shape[0]), idx]
        return pooled @ self.p["score.weight"][0]


def lr_at(step, lr, warmup, total):
    """kiln's schedule: linear warm-up, then cosine decay to lr/10 (lib/optim.c)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if total <= warmup:
        return lr
    progress = min(1.0, (step - warmup) / (total - warmup))
    return lr / 10 + 0.5 * (lr - lr / 10) * (1 + math.cos(math.pi * progress))


def make_adamw(model, lr):
    """AdamW as kiln configures it: decay 0.1 on matrices only."""
    decay = [t for t in model.p.values() if t.dim() == 2]
    other = [t for t in model.p.values() if t.dim() != 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                              {"params": other, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def write_fixture(path, entries):
    """(name, list of numbers) entries as tests/unit/fixture.h reads them: b"KILNFIX1", then
    for each a u32 name length, the name, a u32 count and that many float32."""
    with open(path, "wb") as f:
        f.write(b"KILNFIX1")
        for name, vals in entries:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<I", len(vals)))
            f.write(struct.pack("<%df" % len(vals), *vals))
