#!/usr/bin/python3
"""torch_parity — reference values for tests/unit/test_gpt_parity.c, computed by PyTorch
(float64) on the model of tests/torch_gpt.py, written to tests/fixtures/gpt_parity.bin.

The fixture holds the initial weights, the batch (with a loss mask), and the results the C
model must reproduce from them: the loss, the logits, every parameter gradient of the LM
loss, the per-token log-probabilities and entropies, each sequence's summed log-probability,
every parameter gradient of a weighted sum of log-probabilities, the scalar head's values and
gradients (last-position pooling), and every parameter after 3 AdamW steps (warm-up + cosine schedule, clipping at norm 1).  The C test reads only
the fixture, so it runs without torch; rerun this script to recreate it:

    /usr/bin/python3 tests/torch_parity.py [tests/fixtures/gpt_parity.bin]

Format: b"KILNFIX1", then entries: u32 name length, name (UTF-8), u32 count, count float32."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import GPT, lr_at, make_adamw, write_fixture  # noqa: E402

L, C, H, CTX, V, B, T = 2, 32, 4, 16, 48, 3, 16
LR, WARMUP, STEPS = 1e-2, 2, 3

torch.manual_seed(4)
model = GPT(L, C, H, CTX, V, scalar_head=True, dtype=torch.float64)
with torch.no_grad():  # perturb every tensor so each gradient path is exercised
    for name, t in model.p.items():
        t.add_(torch.randn_like(t) * (0.1 if t.dim() == 1 else 0.05))
x = torch.randint(0, V, (B, T))
y = torch.randint(0, V, (B, T))
mask = torch.ones(B, T, dtype=torch.int64)
mask[0, :5] = 0  # a prompt that does not count
mask[2, 11:] = 0  # padding at the end
value_w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)

entries = [("config", [L, C, H, CTX, V, B, T, LR, WARMUP, STEPS]),
           ("x", x.flatten().tolist()), ("y", y.flatten().tolist()),
           ("mask", mask.flatten().tolist()), ("value_weights", value_w.tolist())]
entries += [("init/" + n, model.p[n].detach().flatten().tolist()) for n in model.names]

# LM loss, logits and gradients
hidden = model.hidden(x)
logits = model.logits(hidden)
loss = model.loss(logits, y, mask)
loss.backward()
entries += [("loss", [loss.item()]), ("logits", logits.detach().flatten().tolist())]
entries += [("grad/" + n, model.p[n].grad.flatten().tolist())
            for n in model.names if model.p[n].grad is not None]
model.zero_grad(set_to_none=True)

# per-token log-probabilities and entropies, each sequence's masked sum, and the gradients of
# a weighted sum of log-probabilities (PPO's and DPO's shape: a weight per position, some
# negative, zero off the mask); the weights come from their own generator, so the global
# random stream and every value above stay as they were
logits = model.logits(model.hidden(x))
logp_all = torch.log_softmax(logits, dim=-1)
logp = logp_all.gather(-1, y.unsqueeze(-1)).squeeze(-1)
entropy = -(logp_all.exp() * logp_all).sum(-1)
seq_logp = (logp * mask).sum(1)
w = torch.randn(B, T, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * mask
(w * logp).sum().backward()
entries += [("logp", logp.detach().flatten().tolist()),
            ("entropy", entropy.detach().flatten().tolist()),
            ("seq_logp", seq_logp.detach().tolist()), ("logp_weights", w.flatten().tolist())]
entries += [("wgrad/" + n, model.p[n].grad.flatten().tolist())
            for n in model.names if model.p[n].grad is not None]
model.zero_grad(set_to_none=True)

# scalar head at each row's last counted position
values = model.scalar_last(model.hidden(x), mask)
(values * value_w).sum().backward()
entries += [("values", values.detach().tolist())]
entries += [("sgrad/" + n, model.p[n].grad.flatten().tolist()) for n in model.names]
model.zero_grad(set_to_none=True)

# 3 AdamW steps on the LM loss
# Adam divides by sqrt(v): where a gradient is mathematically zero (the key bias: softmax
# ignores a per-row constant) or tiny, float32 rounding noise decides the sign of the step.
# Those elements are listed as "flat/NAME" and checked against the step size instead.
opt = make_adamw(model, LR)
norms = []
smallest = {n: torch.full_like(model.p[n], float("inf")) for n in model.names}
for step in range(STEPS):
    opt.zero_grad(set_to_none=False)
    model.loss(model.logits(model.hidden(x)), y, mask).backward()
    for n in model.names:
        if model.p[n].grad is None:  # kiln decays every matrix each step, used or not
            model.p[n].grad = torch.zeros_like(model.p[n])
        g = model.p[n].grad.abs()
        smallest[n] = torch.minimum(smallest[n], g / max(g.max().item(), 1e-30))
    norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item())
    for g in opt.param_groups:
        g["lr"] = lr_at(step, LR, WARMUP, STEPS)
    opt.step()
entries += [("grad_norms", norms)]
entries += [("flat/" + n, (smallest[n].flatten() < 1e-4).nonzero().flatten().tolist())
            for n in model.names]
entries += [("step3/" + n, model.p[n].detach().flatten().tolist()) for n in model.names]

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "fixtures", "gpt_parity.bin")
write_fixture(out, entries)
print(f"{out}: loss {loss.item():.6f}, grad norms {[round(n, 3) for n in norms]}, "
      f"{os.path.getsize(out)} bytes")
