/* objective — what a trainer optimises, as a table of functions the engine calls
 * (lib/run/engine.h).  The engine owns everything else: reading records, gradient
 * accumulation, clipping, the schedule, the optimizer step, the NaN/Inf guard, metrics
 * and ckpt records, signals and exact resume.  An objective only turns one record into a
 * loss and a gradient, and names the extra numbers it reports.
 *
 * Adding one (a reward model, DPO, a contrastive loss) is a file in lib/run/ with a
 * constructor that fills this table; docs/architecture.md walks through it. */
#ifndef KILN_OBJECTIVE_H
#define KILN_OBJECTIVE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/gpt.h"
#include "stream/stream.h"

#define KOBJ_MAX_METRICS 16

/* What one record gave. */
typedef struct kobj_out {
    double loss;                      /* the loss whose gradient step() accumulated (unscaled) */
    uint64_t tokens;                  /* token positions processed, for tokens/s */
    double metrics[KOBJ_MAX_METRICS]; /* one per name in metric_names, this record's value */
} kobj_out;

typedef struct kobjective {
    const char *name;   /* "lm", ... : the metrics record's `objective` */
    const char *record; /* the record type it trains on ("batch"); others pass through */
    /* Or, when set, which records it trains on (a shape, not a type name: DPO and the reward
     * model take any record with chosen and rejected, as kiln load jsonl: of TRL's lines
     * gives `sample` records); record then only names them in messages. */
    bool (*accepts)(const krec *r);
    /* The extra fields of every metrics record, NULL-terminated (at most KOBJ_MAX_METRICS).
     * The engine reports each as its mean over the optimizer steps since the last record. */
    const char *const *metric_names;
    gpt_head head; /* the head the model needs: GPT_HEAD_LM or GPT_HEAD_SCALAR */
    /* Forward, loss and backward of one record: accumulate the gradient of scale * loss
     * into m's gradients (the engine zeroes them at each optimizer step and passes
     * scale = 1 / accum).  Returns 0, or 65 with "record N: why" in err for a record it
     * cannot use (the engine stops the run and says so downstream). */
    int (*step)(void *self, gpt *m, const krec *r, float scale, kobj_out *out, char *err,
                size_t errsz);
    /* Called once the model is built, with the tokenizer the run uses (the hdr's, or the
     * --init checkpoint's when the stream has none): for objectives that tokenize text.
     * May be NULL.  0, or 65 with the reason in err. */
    int (*setup)(void *self, const gpt *m, const msgpack_object *tokenizer, char *err,
                 size_t errsz);
    void (*free)(void *self); /* may be NULL */
    void *self;
} kobjective;

/* log sigmoid(z) and sigmoid(z), stable for either sign of z (the preference losses). */
static inline double kobj_log_sigmoid(double z) {
    return z >= 0 ? -log1p(exp(-z)) : z - log1p(exp(z));
}
static inline double kobj_sigmoid(double z) {
    return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
}

#endif
