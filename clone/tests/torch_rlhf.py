#!/usr/bin/python3
"""torch_rlhf — reference values for tests/unit/test_rlhf.c: TRL's reward-model (Bradley-Terry)
and DPO losses reimplemented in PyTorch (float64) on the model of tests/torch_gpt.py, written
to tests/fixtures/rlhf.bin.

TRL's RewardTrainer (trl/trainer/reward_trainer.py): the scalar head at each sequence's last
token, loss = -logsigmoid(r_chosen - r_rejected).mean(), plus, with
center_rewards_coefficient c, c * mean((r_chosen + r_rejected) ** 2).
TRL's DPOTrainer (trl/trainer/dpo_trainer.py): logps = the sum of log p of the completion
tokens given the prompt; logits = (pi_c - pi_r) - (ref_c - ref_r);
sigmoid: -logsigmoid(beta logits) (1 - ls) - logsigmoid(-beta logits) ls;
ipo: (logits - 1 / (2 beta)) ** 2 on logps averaged over the completion tokens;
rewards = beta (pi - ref).  Losses are the mean over the batch (here two pairs).

Cases (each: loss, rewards/margins or margin, every parameter gradient):
  bt         reward model, no centering
  bt_center  reward model, center_rewards_coefficient 0.01
  dpo        sigmoid, beta 0.1
  dpo_ls     sigmoid, beta 0.5, label smoothing 0.2
  ipo        ipo, beta 0.1

    /usr/bin/python3 tests/torch_rlhf.py [tests/fixtures/rlhf.bin]

Format as tests/torch_parity.py: b"KILNFIX1", then u32 name length, name, u32 count, f32s."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt import GPT, write_fixture  # noqa: E402

L, C, H, CTX, V = 2, 32, 4, 16, 48
# (prompt, chosen, rejected) lengths of the two pairs
LENS = [(4, 5, 3), (2, 4, 6)]

torch.manual_seed(12)
rm = GPT(L, C, H, CTX, V, scalar_head=True, dtype=torch.float64)
policy = GPT(L, C, H, CTX, V, dtype=torch.float64)
with torch.no_grad():
    for model in (rm, policy):
        for t in model.p.values():
            t.add_(torch.randn_like(t) * (0.1 if t.dim() == 1 else 0.05))
        if "score.weight" in model.p:
            model.p["score.weight"].normal_(0.0, 0.3)
pairs = [[torch.randint(0, V, (n,)) for n in lens] for lens in LENS]

entries = [("config", [L, C, H, CTX, V, len(pairs)])]
for i, (p, c, r) in enumerate(pairs):
    entries += [(f"pair{i}/prompt", p.tolist()), (f"pair{i}/chosen", c.tolist()),
                (f"pair{i}/rejected", r.tolist())]
entries += [("rm/" + n, rm.p[n].detach().flatten().tolist()) for n in rm.names]
entries += [("policy/" + n, policy.p[n].detach().flatten().tolist()) for n in policy.names]


def rewards(p, c, r):
    """r_chosen, r_rejected: the scalar head at the last token of prompt + completion."""
    out = []
    for comp in (c, r):
        seq = torch.cat([p, comp])[None]
        out.append(rm.scalar_last(rm.hidden(seq), torch.ones_like(seq))[0])
    return out


def completion_logps(p, comp, average):
    """Sum (or mean) of log p(completion token | everything before it)."""
    seq = torch.cat([p, comp])
    logits = policy.logits(policy.hidden(seq[None, :-1]))[0]
    logp = F.log_softmax(logits, dim=-1).gather(1, seq[1:, None])[:, 0]
    s = logp[len(p) - 1:].sum()
    return s / len(comp) if average else s


for case, center in [("bt", 0.0), ("bt_center", 0.01)]:
    rm.zero_grad(set_to_none=True)
    rc, rr = zip(*[rewards(*pr) for pr in pairs])
    rc, rr = torch.stack(rc), torch.stack(rr)
    loss = -F.logsigmoid(rc - rr).mean()
    if center:
        loss = loss + center * torch.mean((rc + rr) ** 2)
    loss.backward()
    entries += [(case + "/loss", [loss.item()]), (case + "/margin", [(rc - rr).mean().item()])]
    entries += [(case + "/grad/" + n, rm.p[n].grad.flatten().tolist()) for n in rm.names]

# reference log-probabilities (summed, as kiln logps writes them): the policy's, moved
with torch.no_grad():
    ref = [[completion_logps(p, comp, False) + 0.7 * (j - 0.5) * (i + 1)
            for j, comp in enumerate((c, r))] for i, (p, c, r) in enumerate(pairs)]
for i, (rc_, rr_) in enumerate(ref):
    entries.append((f"pair{i}/ref", [rc_.item(), rr_.item()]))

for case, beta, ls, ipo in [("dpo", 0.1, 0.0, False), ("dpo_ls", 0.5, 0.2, False),
                            ("ipo", 0.1, 0.0, True)]:
    policy.zero_grad(set_to_none=True)
    pc = torch.stack([completion_logps(p, c, ipo) for p, c, _ in pairs])
    pr = torch.stack([completion_logps(p, r, ipo) for p, _, r in pairs])
    rc = torch.stack([ref[i][0] / (len(c) if ipo else 1) for i, (_, c, _) in enumerate(pairs)])
    rr = torch.stack([ref[i][1] / (len(r) if ipo else 1) for i, (_, _, r) in enumerate(pairs)])
    logits = (pc - pr) - (rc - rr)
    if ipo:
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        losses = -F.logsigmoid(beta * logits) * (1 - ls) - F.logsigmoid(-beta * logits) * ls
    loss = losses.mean()
    loss.backward()
    margins = (beta * (pc - rc) - beta * (pr - rr)).mean()
    entries += [(case + "/config", [beta, ls, float(ipo)]), (case + "/loss", [loss.item()]),
                (case + "/margin", [margins.item()])]
    entries += [(case + "/grad/" + n, policy.p[n].grad.flatten().tolist()) for n in policy.names]

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "fixtures", "rlhf.bin")
write_fixture(out, entries)
print("wrote", out)
