#!/usr/bin/python3
"""torch_contrastive — reference values for tests/unit/test_contrastive.c: sentence-
transformers' MultipleNegativesRankingLoss (and its symmetric variant) reimplemented in
PyTorch (float64) on the model of tests/torch_gpt.py, written to tests/fixtures/contrastive.bin.

sentence-transformers embeds each text by pooling the final hidden states (mean over the
attention mask by default), then scores = cos_sim(anchors, candidates) * scale (20) with the
candidates = positives then hard negatives, loss = cross_entropy(scores, arange(B)); the
symmetric loss averages that with cross_entropy(scores[:, :B].T, arange(B)).

Cases (each: loss, in-batch accuracy, every parameter gradient):
  mean      mean pooling, hard negatives
  sym       mean pooling, hard negatives, symmetric
  last      last-token pooling, no negatives

    /usr/bin/python3 tests/torch_contrastive.py [tests/fixtures/contrastive.bin]

Format as tests/torch_parity.py: b"KILNFIX1", then u32 name length, name, u32 count, f32s."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import GPT, write_fixture  # noqa: E402

L, C, H, CTX, V = 2, 32, 4, 16, 48
A, K, T, SCALE = 3, 2, 10, 20.0

torch.manual_seed(11)
model = GPT(L, C, H, CTX, V, dtype=torch.float64)
with torch.no_grad():
    for t in model.p.values():
        t.add_(torch.randn_like(t) * (0.1 if t.dim() == 1 else 0.05))
rows = 2 * A + K
x = torch.randint(0, V, (rows, T))
lengths = torch.tensor([10, 7, 4, 9, 10, 5, 8, 6])[:rows]
mask = (torch.arange(T)[None, :] < lengths[:, None]).to(torch.int64)

entries = [("config", [L, C, H, CTX, V, A, K, T, SCALE]), ("x", x.flatten().tolist()),
           ("mask", mask.flatten().tolist())]
entries += [("init/" + n, model.p[n].detach().flatten().tolist()) for n in model.names]


def pool(hidden, how, n):
    m = mask[:n].to(hidden.dtype)
    if how == "mean":
        return (hidden * m[:, :, None]).sum(1) / m.sum(1, keepdim=True)
    return hidden[torch.arange(n), lengths[:n] - 1]


def mnrl(emb, symmetric, with_negatives):
    anchors = F.normalize(emb[:A], dim=-1)
    cands = F.normalize(emb[A:] if with_negatives else emb[A:2 * A], dim=-1)
    scores = anchors @ cands.t() * SCALE
    labels = torch.arange(A)
    loss = F.cross_entropy(scores, labels)
    if symmetric:
        loss = (loss + F.cross_entropy(scores[:, :A].t(), labels)) / 2
    acc = (scores.argmax(1) == labels).double().mean()
    return loss, acc


for case, how, symmetric, negs in [("mean", "mean", False, True), ("sym", "mean", True, True),
                                   ("last", "last", False, False)]:
    model.zero_grad(set_to_none=True)
    n = rows if negs else 2 * A  # without negatives only the anchors and positives exist
    emb = pool(model.hidden(x[:n]), how, n)
    loss, acc = mnrl(emb, symmetric, negs)
    loss.backward()
    entries += [(case + "/loss", [loss.item()]), (case + "/accuracy", [acc.item()])]
    entries += [(case + "/grad/" + nm, model.p[nm].grad.flatten().tolist()) for nm in model.names]

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "fixtures", "contrastive.bin")
write_fixture(out, entries)
print("wrote", out)
