#!/usr/bin/python3
"""Reference values for lib/run/ppo.c: TRL's PPO arithmetic (trl/trainer/ppo_trainer.py and
trl/trainer/utils.py: masked_mean, masked_var, masked_whiten, the GAE loop, the clipped
policy and value losses) in PyTorch float64, with autograd for the gradients, on fixed
numbers; written to tests/fixtures/ppo.bin for tests/unit/test_ppo.c.

    /usr/bin/python3 tests/torch_ppo.py [tests/fixtures/ppo.bin]

Padding follows kiln's convention (lib/run/ppo.h): row r counts its first len[r] tokens, the
score lands on its last one, and GAE sees a value of 0 past it."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import write_fixture  # noqa: E402

torch.manual_seed(12)
R, N = 4, 6
lens = torch.tensor([6, 3, 1, 5])
mask = (torch.arange(N)[None, :] < lens[:, None]).double()
beta, gamma, lam, eps, eps_v, vf_coef = 0.05, 1.0, 0.95, 0.2, 0.2, 0.1

def d(*shape, s=1.0):
    return (torch.randn(*shape, dtype=torch.float64) * s) * mask if len(shape) == 2 else \
        torch.randn(*shape, dtype=torch.float64) * s

logp = d(R, N) - 2 * mask          # the policy at rollout time
ref = logp + d(R, N, s=0.2)         # the reference
values = d(R, N, s=0.5)
raw = torch.tensor([0.7, -6.5, 2.0, 9.0], dtype=torch.float64)
ended = torch.tensor([True, True, False, True])

def masked_mean(x, m):
    return (x * m).sum() / m.sum()

def masked_var(x, m):
    mean = masked_mean(x, m)
    var = masked_mean((x - mean) ** 2, m)
    return var * (m.sum() / (m.sum() - 1))

def masked_whiten(x, m):
    mean, var = masked_mean(x, m), masked_var(x, m)
    return (x - mean) * torch.rsqrt(var + 1e-8)

# scores: missing-EOS penalty (1.0), then clipped to +-5
scores = torch.where(ended, raw, raw - 1.0).clamp(-5, 5)
kl = (logp - ref) * mask            # k1
rewards = -beta * kl
for r in range(R):
    rewards[r, lens[r] - 1] += scores[r]
rewards = rewards * mask

adv = torch.zeros(R, N, dtype=torch.float64)
for r in range(R):
    last = 0.0
    for t in reversed(range(int(lens[r]))):
        nextv = values[r, t + 1] if t + 1 < lens[r] else 0.0
        delta = rewards[r, t] + gamma * nextv - values[r, t]
        last = delta + gamma * lam * last
        adv[r, t] = last
returns = (adv + values) * mask
white = masked_whiten(adv, mask) * mask

# the losses at a new policy and value prediction (some ratios and values clipped)
new_logp = (logp + d(R, N, s=0.3)).requires_grad_(True)
vpred = (values + d(R, N, s=0.4)).requires_grad_(True)
diff = new_logp - logp
ratio = torch.exp(diff)
pg1 = -white * ratio
pg2 = -white * torch.clamp(ratio, 1 - eps, 1 + eps)
pg_loss = masked_mean(torch.max(pg1, pg2), mask)
pg_clipfrac = masked_mean((pg2 > pg1).double(), mask)
vclip = torch.clamp(vpred, values - eps_v, values + eps_v)
v1 = (vpred - returns) ** 2
v2 = (vclip - returns) ** 2
vf_loss = 0.5 * masked_mean(torch.max(v1, v2), mask)
vf_clipfrac = masked_mean((v2 > v1).double(), mask)
loss = pg_loss + vf_coef * vf_loss
loss.backward()
approxkl = 0.5 * masked_mean(diff ** 2, mask)
ratio_mean = masked_mean(ratio, mask)

def flat(t):
    return [float(v) for v in t.detach().reshape(-1)]

entries = [
    ("len", flat(lens.double())), ("logp", flat(logp)), ("ref_logp", flat(ref)),
    ("values", flat(values)), ("raw", flat(raw)), ("ended", flat(ended.double())),
    ("new_logp", flat(new_logp)), ("vpred", flat(vpred)),
    ("scores", flat(scores)), ("kl", flat(kl)), ("rewards", flat(rewards)),
    ("adv", flat(adv * mask)), ("returns", flat(returns)), ("white", flat(white)),
    ("pg_loss", [float(pg_loss)]), ("vf_loss", [float(vf_loss)]), ("loss", [float(loss)]),
    ("pg_clipfrac", [float(pg_clipfrac)]), ("vf_clipfrac", [float(vf_clipfrac)]),
    ("approxkl", [float(approxkl)]), ("ratio", [float(ratio_mean)]),
    ("dlogp", flat(new_logp.grad * mask)), ("dvalue", flat(vpred.grad * mask)),
]
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "fixtures", "ppo.bin")
write_fixture(out, entries)
print("pg_clipfrac %.3f vf_clipfrac %.3f" % (float(pg_clipfrac), float(vf_clipfrac)))
