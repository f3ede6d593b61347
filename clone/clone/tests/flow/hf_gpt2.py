"""Hugging Face GPT-2 directories for tests/flow/hf_gpt2.sh, in plain PyTorch (no kiln code,
no transformers):
  hf_gpt2.py logits DIR KILN_LOGITS TOKENS   a GPT-2 built from DIR/config.json and
      DIR/model.safetensors; prints "max_abs_diff D max_abs_logit M" against kiln's logits
  hf_gpt2.py plain SRC DST   DST as transformers' save_pretrained writes a GPT2LMHeadModel:
      config.json, model.safetensors with only {"format": "pt"} metadata, lm_head.weight
      (= wte) and the attn.bias mask buffers, SRC's encoder.json and vocab.bpe
  hf_gpt2.py peft DIR ADAPTERS KILN_LOGITS TOKENS   DIR's GPT-2 with the LoRA adapters of
      ADAPTERS folded in as PEFT reads them (adapter_config.json: r, lora_alpha,
      target_modules, fan_in_fan_out; adapter_model.safetensors: base_model.model.* lora_A
      [r, in], lora_B [out, r]); prints the difference as logits does
  hf_gpt2.py break DIR WHAT  spoil DIR: "shape" (config.json's n_embd doubled), "eps"
      (layer_norm_epsilon 1e-6), "head" (lm_head.weight no longer wte)"""
import json
import math
import os
import shutil
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, d in head.items():
        assert d["dtype"] == "F32", name
        lo, hi = d["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[lo:hi]), dtype=torch.float32).reshape(d["shape"])
    return out, meta


def write_st(path, tensors, meta):
    head, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        b = t.contiguous().numpy().tobytes()
        head[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class Block(nn.Module):
    def __init__(self, C, H, eps):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C, eps=eps), nn.LayerNorm(C, eps=eps)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        att = q @ k.transpose(-2, -1) / math.sqrt(C // self.H)
        att = att.masked_fill(torch.ones(T, T).tril() == 0, float("-inf")).softmax(-1)
        x = x + self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    """From GPT-2's config.json: n_layer, n_embd, n_head, n_positions, vocab_size."""

    def __init__(self, cfg):
        super().__init__()
        C, eps = cfg["n_embd"], cfg.get("layer_norm_epsilon", 1e-5)
        self.wte, self.wpe = nn.Embedding(cfg["vocab_size"], C), nn.Embedding(cfg["n_positions"], C)
        self.h = nn.ModuleList(Block(C, cfg["n_head"], eps) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(C, eps=eps)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.weight.t()

    @torch.no_grad()
    def load(self, t):
        """transformer.* names; Conv1D weights are [in, out], nn.Linear wants [out, in]."""
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
        if "lm_head.weight" in t:
            assert torch.equal(t["lm_head.weight"], t["transformer.wte.weight"])


mode = sys.argv[1]
if mode == "logits":
    d = sys.argv[2]
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"], cfg
    tensors, _ = read_st(os.path.join(d, "model.safetensors"))
    model = GPT2(cfg).eval()
    model.load(tensors)
    tokens = torch.tensor([[int(x) for x in sys.argv[4].split(",")]])
    with torch.no_grad():
        ours = model(tokens)[0].double()
    theirs = torch.tensor([[float(v) for v in l.split()] for l in open(sys.argv[3])], dtype=torch.float64)
    assert theirs.shape == ours.shape, (theirs.shape, ours.shape)
    print("max_abs_diff %.3g max_abs_logit %.3g" % ((ours - theirs).abs().max().item(), ours.abs().max().item()))
elif mode == "peft":
    d, ad = sys.argv[2], sys.argv[3]
    cfg = json.load(open(os.path.join(d, "config.json")))
    tensors, _ = read_st(os.path.join(d, "model.safetensors"))
    pc = json.load(open(os.path.join(ad, "adapter_config.json")))
    assert pc["peft_type"] == "LORA" and pc["fan_in_fan_out"] and pc["task_type"] == "CAUSAL_LM", pc
    lora, _ = read_st(os.path.join(ad, "adapter_model.safetensors"))
    scale, used = pc["lora_alpha"] / pc["r"], 0
    for name in list(tensors):
        mod = name[:-len(".weight")]
        if not any(mod.endswith("." + t) for t in pc["target_modules"]):
            continue
        A = lora["base_model.model." + mod + ".lora_A.weight"]
        B = lora["base_model.model." + mod + ".lora_B.weight"]
        assert A.shape[0] == pc["r"] and B.shape[1] == pc["r"]
        tensors[name] = tensors[name] + scale * (B @ A).t()  # Conv1D keeps [in, out]
        used += 1
    assert used == cfg["n_layer"] * len(pc["target_modules"]), used
    model = GPT2(cfg).eval()
    model.load(tensors)
    tokens = torch.tensor([[int(x) for x in sys.argv[5].split(",")]])
    with torch.no_grad():
        ours = model(tokens)[0].double()
    theirs = torch.tensor([[float(v) for v in l.split()] for l in open(sys.argv[4])], dtype=torch.float64)
    print("max_abs_diff %.3g max_abs_logit %.3g adapted %d" % ((ours - theirs).abs().max().item(), ours.abs().max().item(), used))
elif mode == "plain":
    src, dst = sys.argv[2], sys.argv[3]
    os.makedirs(dst, exist_ok=True)
    tensors, _ = read_st(os.path.join(src, "model.safetensors"))
    cfg = json.load(open(os.path.join(src, "config.json")))
    P = cfg["n_positions"]
    for i in range(cfg["n_layer"]):
        tensors[f"transformer.h.{i}.attn.bias"] = torch.ones(P, P).tril().view(1, 1, P, P)
    tensors["lm_head.weight"] = tensors["transformer.wte.weight"].clone()
    write_st(os.path.join(dst, "model.safetensors"), tensors, {"format": "pt"})
    for f in ("config.json", "encoder.json", "vocab.bpe"):
        shutil.copy(os.path.join(src, f), dst)
elif mode == "break":
    d, what = sys.argv[2], sys.argv[3]
    cp = os.path.join(d, "config.json")
    cfg = json.load(open(cp))
    if what == "shape":
        cfg["n_embd"] *= 2
    elif what == "eps":
        cfg["layer_norm_epsilon"] = 1e-6
    if what in ("shape", "eps"):
        json.dump(cfg, open(cp, "w"))
    if what == "head":
        p = os.path.join(d, "model.safetensors")
        tensors, meta = read_st(p)
        tensors["lm_head.weight"] = tensors["lm_head.weight"] * 2
        write_st(p, tensors, meta)
