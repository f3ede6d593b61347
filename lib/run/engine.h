/* engine — the training loop every trainer shares.  A stage parses its options into a
 * kengine_opts, opens the engine on its stream, and runs it with an objective
 * (lib/run/objective.h); the engine does the rest:
 *
 *   model     a preset or explicit shape, or a checkpoint's (--init): resumed (weights,
 *             AdamW moments, step, data cursor) or fine-tuned (weights only, a new run),
 *             with --freeze, --lora / --train and --add-class wired (lib/run/finetune.h);
 *   loop      records of the objective's type train, others pass through; --accum
 *             micro-batches per optimizer step; gradients clipped to global norm 1; the
 *             warm-up + cosine schedule; AdamW (lib/model/optim.h);
 *   guard     a NaN/Inf loss or gradient stops the run after the last good ckpt, naming
 *             the step and the tensor (65);
 *   out       a hdr carrying the total steps, `metrics` records every --log-every steps
 *             (step, loss, lr, grad_norm, tokens_per_s, elapsed_s, optim_bytes and the
 *             objective's own fields), `ckpt` records every --every steps and at the end
 *             (lib/ckpt/record.h);
 *   signals   SIGINT/SIGTERM: the step in progress finishes, a final ckpt goes out, and
 *             the stage's kiln_finish ends the stream `interrupted`.
 *
 *     kengine *e = kengine_open(&opts, &obj, kreader_hdr(r), w);
 *     int rc = kengine_run(e, r, err, sizeof err);
 *     kengine_free(e);
 *
 * Functions that can fail on the user's input return 0 or an exit code with the message
 * in err; kengine_open exits (2 for options, 65/74 for a bad checkpoint): it runs once,
 * before anything has been written. */
#ifndef KILN_ENGINE_H
#define KILN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "run/finetune.h"
#include "run/objective.h"
#include "stream/stream.h"

#define KENGINE_MAX_NEW_CLASSES 16

typedef struct kengine_opts {
    /* the model: preset, then the --init checkpoint's shape, then explicit sizes (0: unset) */
    const char *preset;
    int layers, dim, heads, ctx;
    const char *init; /* a checkpoint: resumed, or the base of a fine-tuning run */
    /* fine-tuning (implied by freeze, lora and add) */
    bool finetune;
    const char *freeze, *lora, *train;
    ft_new_class add[KENGINE_MAX_NEW_CLASSES];
    int n_add;
    bool save_start; /* a ckpt record of the starting model (step 0) */
    /* the run */
    uint64_t steps; /* 0: until the input ends */
    uint64_t warmup, accum, log_every, every, seed;
    bool have_lr, have_warmup, have_seed;
    double lr;
    int threads; /* 0: $KILN_THREADS or every CPU */
} kengine_opts;

/* Defaults: accum 1, log every 10 steps, lr 1e-3. */
void kengine_opts_init(kengine_opts *o);
/* Check the combination and fill the defaults that depend on it (fine-tuning: lr 3e-4,
 * LoRA 1e-3, warm-up steps/20; pretraining: warm-up min(100, steps/10)).  0, or 2 with the
 * reason in err. */
int kengine_opts_resolve(kengine_opts *o, char *err, size_t errsz);

typedef struct kengine kengine;

/* Build the model and optimizer the options describe for the stream whose hdr is given
 * (its tokenizer sets the vocabulary and travels in every ckpt), and write this stage's
 * hdr to w.  The objective is borrowed; the engine calls its free at kengine_free. */
kengine *kengine_open(const kengine_opts *o, kobjective *obj, const krec *hdr, kwriter *w);
/* Train until --steps, the end of the input, or a stop signal; then the last metrics and
 * ckpt.  0, or 65 with the reason in err (a record the objective refused, or a NaN/Inf:
 * then the last ckpt written is the last good state). */
int kengine_run(kengine *e, kreader *r, char *err, size_t errsz);
void kengine_free(kengine *e);

/* The model being trained (for tests and objectives that need more than step()). */
gpt *kengine_model(kengine *e);
uint64_t kengine_step(const kengine *e);

#endif
