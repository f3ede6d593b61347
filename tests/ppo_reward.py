#!/usr/bin/python3
"""A reward stage for kiln ppo's tests (tests/stage/ppo.sh), and the shape of any reward stage
in Python: each rollout record comes back with `reward` = the share of 'e' in its completion.
A streaming filter: it reads unbuffered and answers each record at once (docs/stages-rlhf.md).
DIE_AFTER=N exits 3 before answering rollout N; NAN_AFTER=N answers rollout N with NaN;
DELAY=S sleeps S seconds before each answer (a slow reward stage: a run a test stops mid-way)."""
import os, sys, time, msgpack
inp = msgpack.Unpacker(open(0, "rb", buffering=0), raw=False, read_size=1 << 16,
                        unicode_errors="surrogateescape")
out = open(1, "wb", buffering=0)
die_after = int(os.environ.get("DIE_AFTER", "-1"))
nan_after = int(os.environ.get("NAN_AFTER", "-1"))
delay = float(os.environ.get("DELAY", "0"))
n = 0
for rec in inp:
    if rec.get("t") == "hdr":
        rec["stage"] = "ppo_reward.py"
    elif rec.get("t") == "rollout":
        if n == die_after:
            sys.exit(3)
        if delay > 0:
            time.sleep(delay)
        c = rec.get("completion", "")
        rec["reward"] = float("nan") if n == nan_after else (c.count("e") / max(1, len(c)))
        rec["judge"] = "cmd:ppo_reward.py"
        n += 1
    out.write(msgpack.packb(rec, use_bin_type=True, unicode_errors="surrogateescape"))
    if rec.get("t") == "eos":
        break
