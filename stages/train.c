/* kiln-train — batches in, a trained model out: metrics and ckpt records. */
#include "run/engine.h"
#include "run/lm.h"
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
        "Records other than batch pass through.\n"
        "example:\n"
        "  kiln load text:examples/data/moby-dick.txt | kiln tokenize --bytes \\\n"
        "    | kiln batch -B 8 -T 256 --pack | kiln train --model small --steps 50 | kiln show\n",
};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    kengine_opts o;
    kengine_opts_init(&o);
    kopt rows[] = {KENGINE_OPTIONS(&o), KOPT_STREAM(&cli), KOPT_END()};
    kiln_cli_parse(&cli, rows, argc, argv);
    char err[512];
    if (kengine_opts_resolve(&o, err, sizeof err)) kiln_usage_error("%s", err);

    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    kobjective lm = klm_objective();
    kengine *e = kengine_open(&o, &lm, kreader_hdr(r), w);
    int rc = kengine_run(e, r, err, sizeof err);
    kengine_free(e);
    if (rc) kiln_fail(r, w, rc, err);
    kiln_finish(r, w);
}
