/* kiln-ppo — prompts in, a policy trained by PPO against a reward stage out: metrics and ckpt
 * records.  The options and main; the loop is lib/run/pporun.h. */
#include <stdint.h>

#include "run/pporun.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "PPO on prompts against a reward stage; write metrics and ckpt records",
    .usage = "kiln ppo --init FILE --reward CMD\n"
             "                [--lora SPEC] [--iterations N] [--prompts N] [-K N] [--max-new N]\n"
             "                [--kl-coef X] [--epochs N] [--minibatch N] [--lr X] ...",
    .notes =
        "Prompts: records with `prompt` text (kiln load jsonl:), or `sample` records' `text`;\n"
        "other records pass through.  Iteration i takes prompts i*P .. i*P+P-1 (cycling).\n"
        "The reward stage gets a hdr, then each iteration's rollout records, and must answer\n"
        "each with the same record plus `reward` (f64), in order (kiln judge --score, kiln\n"
        "reward, or any program: docs/stages-rlhf.md); --reward runs `sh -c CMD` on a pipe\n"
        "pair.\n"
        "The policy is --init's model with a value head on its trunk (score.weight); the\n"
        "reference is --init itself (with --lora: the base with the adapters off).\n"
        "metrics (TRL's names): objective/kl, objective/entropy, objective/non_score_reward,\n"
        "objective/rlhf_reward, objective/scores, policy/approxkl_avg, policy/clipfrac_avg,\n"
        "policy/entropy_avg, loss/policy_avg, loss/value_avg, val/clipfrac_avg, val/ratio,\n"
        "val/num_eos_tokens, kl_coef, lr, time/generate_s, time/forward_s, time/reward_s,\n"
        "time/update_s.  ckpt records every --every iterations and at the end; the cursor is\n"
        "the next iteration, and --resume CKPT continues a full-model run exactly.\n"
        "Exit: 74 when the reward stage dies, 65 when it answers NaN or garbage; the ckpt\n"
        "record of the last finished iteration goes out first.\n"
        "example:\n"
        "  kiln load jsonl:prompts.jsonl | kiln ppo --init base.safetensors \\\n"
        "    --reward 'kiln judge --score afinn' --iterations 20 | kiln ckpt --dir runs/ppo\n",
};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    kppo_opts opts, *o = &opts;
    kppo_opts_init(o);
    kopt rows[] = {
        KOPT_GROUP("model"),
        KOPT_STRING(0, "init", &o->e.init, "FILE",
                    "the model to start from (kiln ckpt wrote it): the policy's start and the "
                    "frozen reference"),
        KOPT_STRING(0, "lora", &o->e.lora, "SPEC",
                    "train low-rank adapters (and the value head) only: r=8,alpha=16,"
                    "targets=qkv,proj; the reference is the base with them off"),
        KOPT_STRING(0, "train", &o->e.train, "SPEC",
                    "with --lora: these tensors train too (default score.weight, the value "
                    "head; name it when you give others)",
                    .needs = "lora"),
        KOPT_STRING(0, "resume", &o->resume, "CKPT",
                    "continue a full-model run from its checkpoint: weights, value head, AdamW "
                    "moments, step and iteration (--init stays the reference)"),
        KOPT_THREADS(&o->e.threads),
        KOPT_GROUP("rollouts"),
        KOPT_U64(0, "iterations", &o->iterations, "N", 1, 1u << 30,
                 "generate-score-update iterations (default 20)"),
        KOPT_INT(0, "prompts", &o->prompts, "N", 1, 4096, "prompts per iteration (default 8)"),
        KOPT_INT('K', NULL, &o->K, "N", 1, 1024, "completions per prompt (default 4)"),
        KOPT_INT(0, "max-new", &o->max_new, "N", 1, 65535,
                 "tokens per completion at most (default 32)"),
        KOPT_GROUP("reward stage"),
        KOPT_STRING(0, "reward", &o->reward_cmd, "CMD",
                    "run `sh -c CMD` as the reward stage, rollout records on its stdin, the "
                    "same with `reward` back on its stdout"),
        KOPT_DOUBLE(0, "missing-eos-penalty", &o->pc.missing_eos_penalty, "X", 0, 1e6,
                    "subtracted from the score of a completion that never ended (default 1)"),
        KOPT_DOUBLE(0, "score-clip", &o->pc.score_clip, "X", 0, 1e9,
                    "scores clipped to +-X (default 5)", .flags = KOPT_OPEN_MIN),
        KOPT_GROUP("PPO"),
        KOPT_DOUBLE(0, "kl-coef", &o->pc.kl_coef, "X", 0, 100,
                    "beta: the per-token KL penalty's weight, k1 estimator (default 0.05)"),
        KOPT_DOUBLE(0, "target-kl", &o->target_kl, "X", 0, 1e6,
                    "adapt beta towards this KL per completion (Ziegler et al.; default 0: "
                    "fixed beta)"),
        KOPT_DOUBLE(0, "kl-horizon", &o->kl_horizon, "N", 1, 1e12,
                    "the adaptive controller's horizon in samples (default 10000)"),
        KOPT_DOUBLE(0, "gamma", &o->pc.gamma, "X", 0, 1, "GAE discount (default 1)"),
        KOPT_DOUBLE(0, "lam", &o->pc.lam, "X", 0, 1, "GAE lambda (default 0.95)"),
        KOPT_DOUBLE(0, "cliprange", &o->pc.cliprange, "X", 0, 10, "policy ratio clip (default 0.2)",
                    .flags = KOPT_OPEN_MIN),
        KOPT_DOUBLE(0, "cliprange-value", &o->pc.cliprange_value, "X", 0, 1e6,
                    "value clip (default 0.2)", .flags = KOPT_OPEN_MIN),
        KOPT_DOUBLE(0, "vf-coef", &o->pc.vf_coef, "X", 0, 1e6,
                    "the value loss's weight (default 0.1)"),
        KOPT_INT(0, "epochs", &o->epochs, "N", 1, 1000,
                 "passes over each iteration's rollouts (default 4)"),
        KOPT_INT(0, "minibatch", &o->minibatch, "N", 1, 65536,
                 "rollouts per optimizer step (default 8)"),
        KOPT_GROUP("training"),
        KOPT_DOUBLE(0, "lr", &o->e.lr, "X", 0, 10,
                    "peak learning rate (default 1e-5; with --lora 1e-4), cosine to lr/10",
                    .flags = KOPT_OPEN_MIN | KOPT_OPEN_MAX, .given = &o->e.have_lr),
        KOPT_U64(0, "warmup", &o->e.warmup, "N", 0, UINT64_MAX,
                 "linear warm-up optimizer steps (default 0)", .given = &o->e.have_warmup),
        KOPT_U64(0, "seed", &o->e.seed, "N", 0, UINT64_MAX,
                 "sampling and shuffling seed (default: the hdr's)", .given = &o->e.have_seed),
        KOPT_U64(0, "every", &o->every, "N", 0, UINT64_MAX,
                 "a ckpt record every N iterations (default 0: only at the end)"),
        KOPT_STRING(0, "ptx", &o->e.ptx, "FILE",
                    "a record file of pretraining `batch` records: one joins every optimizer "
                    "step, its LM loss weighted --ptx-coef (InstructGPT's PPO-ptx); metrics "
                    "gain ptx_loss",
                    .needs = "ptx-coef"),
        KOPT_DOUBLE(0, "ptx-coef", &o->e.ptx_coef, "X", 0, 1000,
                    "the --ptx batches' weight (OpenRLHF's ptx_coef)", .flags = KOPT_OPEN_MIN,
                    .needs = "ptx"),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    kppo_opts_resolve(o);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    kppo_train(o, r, w);
    kiln_finish(r, w);
}
