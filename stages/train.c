/* kiln-train — batches in, a trained model out: metrics and ckpt records. */
#include <string.h>

#include "run/contrastive.h"
#include "run/dpo.h"
#include "run/engine.h"
#include "run/lm.h"
#include "run/reward.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "train a GPT on batch records; write metrics and ckpt records",
    .usage = "kiln train [--model PRESET | --layers N --dim N --heads N --ctx N] [--steps N]\n"
             "                  [--lr X] [--warmup N] [--accum N] [--every N] [--init FILE] ...",
    .notes =
        "AdamW (betas 0.9, 0.95, eps 1e-8, weight decay 0.1 on matrices), gradients clipped to\n"
        "global norm 1.  The vocabulary comes from the hdr's tokenizer.  metrics: step, loss\n"
        "(mean over the steps since the last record), lr, grad_norm, tokens_per_s, elapsed_s,\n"
        "optim_bytes (the AdamW moments held), eta_s (with --steps: seconds to go at the pace\n"
        "so far).\n"
        "ckpt: config, tokenizer, step, cursor (resume data with kiln load --skip CURSOR),\n"
        "seed, tensors (Hugging Face GPT-2 names), optim.  SIGINT/SIGTERM: the step finishes,\n"
        "a final ckpt goes out, then eos interrupted.  A NaN/Inf loss or gradient stops the run\n"
        "(exit 65) after the last good ckpt, naming the step and the tensor.\n"
        "Records other than the objective's (batch; pairs for contrastive) pass through.\n"
        "Under mpirun (a build with Open MPI), data parallel: each rank trains on its own\n"
        "stream, gradients are averaged over ranks, rank 0 alone writes (give it --out);\n"
        "ckpt also has cursors, each rank's (README: More than one machine: MPI).\n"
        "contrastive metrics: loss, accuracy (in-batch top-1), and `objective`.\n"
        "reward and dpo train on preference pairs: pref records, or any record with chosen and\n"
        "rejected (kiln load jsonl: of TRL's lines), one pair a micro-batch (--accum N pairs a\n"
        "step); text is tokenized with the model's tokenizer (the --init checkpoint's when the\n"
        "stream has none).  --init is then the base: its weights, a new run (as --finetune).\n"
        "reward metrics: accuracy, margin, min_reward, mean_reward, max_reward.  dpo needs\n"
        "ref_chosen_logps/ref_rejected_logps (kiln logps); metrics rewards/chosen,\n"
        "rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected\n"
        "(docs/rlhf.md).\n"
        "example:\n"
        "  kiln load text:examples/data/moby-dick.txt | kiln tokenize --bytes \\\n"
        "    | kiln batch -B 8 -T 256 --pack | kiln train --model small --steps 50 | kiln show\n",
};

static const char *const objectives[] = {"lm", "contrastive", "reward", "dpo", NULL};
static const char *const loss_types[] = {"sigmoid", "ipo", NULL};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    kengine_opts o;
    kengine_opts_init(&o);
    const char *objective = "lm", *pool = "mean";
    kcontrastive_opts c = kcontrastive_defaults();
    kreward_opts rw = {0};
    kdpo_opts dpo = kdpo_defaults();
    const char *loss_type = "sigmoid";
    kopt rows[] = {
        KENGINE_OPTIONS(&o),
        KOPT_GROUP("objective"),
        KOPT_CHOICE(0, "objective", &objective, "NAME", objectives,
                    "lm: next-token cross-entropy on batch records (default); contrastive: "
                    "InfoNCE with in-batch negatives on pairs records (kiln pairs), for "
                    "embedding models; reward: a reward model (Bradley-Terry on the scalar "
                    "head); dpo: Direct Preference Optimization (both on preference pairs)"),
        KOPT_DOUBLE(0, "scale", &c.scale, "X", 0, 1000,
                    "contrastive: the similarity scale, 1/temperature (default 20)",
                    .flags = KOPT_OPEN_MIN, .needs = "objective"),
        KOPT_BOOL(0, "symmetric", &c.symmetric,
                  "contrastive: also each positive picks its anchor (CLIP's loss)",
                  .needs = "objective"),
        KOPT_BOOL(0, "group-positives", &c.group_positives,
                  "contrastive: pairs of one group (kiln pairs --per-label) are each other's "
                  "positives (SupCon) instead of being left out",
                  .needs = "objective"),
        KOPT_CHOICE(0, "pool", &pool, "HOW", gpt_pool_names,
                    "contrastive: mean over a row's tokens (default), its last token, or "
                    "weightedmean (by position, SGPT); use the same with kiln embed",
                    .needs = "objective"),
        KOPT_DOUBLE(0, "center-rewards", &rw.center, "X", 0, 1000,
                    "reward: + X mean((r_chosen + r_rejected)^2), TRL's "
                    "center_rewards_coefficient (default 0; TRL suggests 0.01)",
                    .needs = "objective"),
        KOPT_DOUBLE(0, "beta", &dpo.beta, "X", 0, 1000, "dpo: the KL strength beta (default 0.1)",
                    .flags = KOPT_OPEN_MIN, .needs = "objective"),
        KOPT_CHOICE(0, "loss-type", &loss_type, "NAME", loss_types,
                    "dpo: sigmoid (DPO, default) or ipo", .needs = "objective"),
        KOPT_DOUBLE(0, "label-smoothing", &dpo.label_smoothing, "X", 0, 0.5,
                    "dpo: the sigmoid loss's label smoothing (conservative DPO; default 0)",
                    .needs = "objective"),
        KOPT_STRING(0, "ptx", &o.ptx, "FILE",
                    "dpo: a record file of pretraining `batch` records; one joins every "
                    "optimizer step, its LM loss weighted --ptx-coef (InstructGPT's PPO-ptx), so "
                    "the model keeps its language; metrics gain ptx_loss",
                    .needs = "ptx-coef"),
        KOPT_DOUBLE(0, "ptx-coef", &o.ptx_coef, "X", 0, 1000,
                    "the --ptx batches' weight (OpenRLHF's ptx_coef)", .flags = KOPT_OPEN_MIN,
                    .needs = "ptx"),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    char err[512];
    bool prefs = !strcmp(objective, "reward") || !strcmp(objective, "dpo");
    if (prefs && !o.init)
        kiln_usage_error("--objective %s needs --init BASE (a checkpoint to start from)",
                         objective);
    if (!strcmp(objective, "reward") && o.lora)
        kiln_usage_error("--objective reward with --lora: the adapter could not carry the new "
                         "scalar head into a merged model; use --freeze (e.g. embeddings) to "
                         "train fewer weights");
    if (o.ptx && strcmp(objective, "dpo") && strcmp(objective, "contrastive"))
        kiln_usage_error("--ptx goes with --objective dpo or contrastive (the others train on "
                         "batches already, or a scalar head)");
    o.finetune |= prefs; /* the base's weights, a new run */
    if (kengine_opts_resolve(&o, err, sizeof err)) kiln_usage_error("%s", err);

    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kengine_writer(&cli);
    c.pool = gpt_pool_parse(pool);
    dpo.ipo = !strcmp(loss_type, "ipo");
    kobjective obj = !strcmp(objective, "contrastive") ? kcontrastive_objective(&c)
                     : !strcmp(objective, "reward")    ? kreward_objective(&rw)
                     : !strcmp(objective, "dpo")       ? kdpo_objective(&dpo)
                                                       : klm_objective();
    kengine *e = kengine_open(&o, &obj, kreader_hdr(r), w);
    int rc = kengine_run(e, r, err, sizeof err);
    kengine_free(e);
    if (rc) kiln_fail(r, w, rc, err);
    kiln_finish(r, w);
}
