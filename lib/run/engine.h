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
 *             (step, loss, lr, grad_norm, tokens_per_s, elapsed_s, optim_bytes, eta_s
 *             with --steps, the objective's own fields, ptx_loss with --ptx), `ckpt` records every
 * --every steps and at the end (lib/ckpt/record.h); signals   SIGINT/SIGTERM: the step in progress
 * finishes, a final ckpt goes out, and the stage's kiln_finish ends the stream `interrupted`; ranks
 * under mpirun, data parallel (lib/run/dist.h): each rank trains on its own records, the gradients
 * are averaged over ranks before clipping, every rank takes the same step, and all stop after the
 * same step (a vote each step); rank 0 alone writes (kengine_writer).
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
#include "stream/options.h"
#include "stream/stream.h"

#define KENGINE_MAX_NEW_CLASSES 16

typedef struct kengine_opts {
    /* the model: preset, then the --init checkpoint's shape, then explicit sizes (0: unset) */
    const char *preset;
    int layers, dim, heads, ctx;
    const char *init;     /* a checkpoint: resumed, or the base of a fine-tuning run */
    bool reset_optimizer; /* resume with the AdamW moments at zero */
    /* fine-tuning (implied by freeze, lora and add) */
    bool finetune;
    const char *freeze, *lora, *train;
    ft_new_class add[KENGINE_MAX_NEW_CLASSES];
    int n_add;
    bool save_start;       /* a ckpt record of the starting model (step 0) */
    bool new_classes_only; /* with add: only the new embedding rows train (a rows adapter) */
    /* the run */
    uint64_t steps; /* 0: until the input ends */
    uint64_t warmup, accum, log_every, every, seed;
    bool have_lr, have_warmup, have_seed;
    double lr;
    int threads; /* 0: $KILN_THREADS or every CPU */
    /* pretraining batches mixed into a fine-tuning run (InstructGPT's PPO-ptx, OpenRLHF's
     * --ptx_coef): before each optimizer step the next `batch` record of the file `ptx`
     * (cycled; on resume, at the step's place) adds ptx_coef x its LM loss's gradient */
    const char *ptx;
    double ptx_coef;
} kengine_opts;

/* --add-class NAME[=FROM] (dest: a kengine_opts *), for the option table. */
bool kengine_add_class_option(void *dest, const char *arg, char *err, size_t errsz);

/* The option rows every trainer shares (o: a kengine_opts *): the model, the run and
 * fine-tuning, under their headings. */
#define KENGINE_OPTIONS(o)                                                                         \
    KOPT_GROUP("model"),                                                                           \
        KOPT_CHOICE(0, "model", &(o)->preset, "PRESET", kengine_presets,                           \
                    "tiny (2 layers, 64 wide, 4 heads), small (4, 256, 4), char (6, 384, 6); "     \
                    "context 256 (default small)"),                                                \
        KOPT_INT(0, "layers", &(o)->layers, "N", 1, 80,                                            \
                 "layers: these four set or override the shape of the preset or of --init"),       \
        KOPT_INT(0, "dim", &(o)->dim, "N", 1, 16384, "width, a multiple of --heads"),              \
        KOPT_INT(0, "heads", &(o)->heads, "N", 1, 16384, "attention heads"),                       \
        KOPT_INT(0, "ctx", &(o)->ctx, "N", 1, 65536, "context length in tokens"),                  \
        KOPT_GROUP("training"),                                                                    \
        KOPT_U64(0, "steps", &(o)->steps, "N", 0, UINT64_MAX,                                      \
                 "stop after optimizer step N (default: when the input ends); the cosine "         \
                 "schedule decays to lr/10 at step N"),                                            \
        KOPT_DOUBLE(0, "lr", &(o)->lr, "X", 0, 10, "peak learning rate (default 1e-3)",            \
                    .flags = KOPT_OPEN_MIN | KOPT_OPEN_MAX, .given = &(o)->have_lr),               \
        KOPT_U64(0, "warmup", &(o)->warmup, "N", 0, UINT64_MAX,                                    \
                 "linear warm-up steps (default min(100, steps/10))", .given = &(o)->have_warmup), \
        KOPT_U64(0, "accum", &(o)->accum, "N", 1, 65536,                                           \
                 "batches per optimizer step: gradient accumulation (default 1)"),                 \
        KOPT_U64(0, "seed", &(o)->seed, "N", 0, UINT64_MAX,                                        \
                 "initialisation seed (default: the hdr's seed)", .given = &(o)->have_seed),       \
        KOPT_U64(0, "log-every", &(o)->log_every, "N", 1, UINT64_MAX,                              \
                 "a metrics record every N steps (default 10)"),                                   \
        KOPT_U64(0, "every", &(o)->every, "N", 0, UINT64_MAX,                                      \
                 "a ckpt record every N steps (default 0: only at the end)"),                      \
        KOPT_STRING(0, "init", &(o)->init, "FILE",                                                 \
                    "start from a safetensors checkpoint (kiln ckpt writes them): its weights, "   \
                    "optimizer state and step; its shape unless given"),                           \
        KOPT_BOOL(0, "reset-optimizer", &(o)->reset_optimizer,                                     \
                  "resume from --init with the AdamW moments at zero (for a checkpoint whose "     \
                  "optimizer state is missing or incomplete; else that is refused)",               \
                  .needs = "init"),                                                                \
        KOPT_THREADS(&(o)->threads),                                                               \
        KOPT_GROUP("fine-tuning (--init is then a pretrained base: its weights only, step 0, "     \
                   "fresh AdamW, default lr 3e-4 (LoRA 1e-3) and warm-up steps/20; "               \
                   "docs/stages-finetune.md)"),                                                    \
        KOPT_BOOL(0, "finetune", &(o)->finetune, "full fine-tuning of every tensor"),              \
        KOPT_STRING(0, "freeze", &(o)->freeze, "SPEC",                                             \
                    "freeze tensors: embeddings, wte, wpe, ln_f, blocks:A-B, all-but-head, or "    \
                    "tensor names / module prefixes, comma-separated; frozen tensors cost no "     \
                    "weight-gradient work and hold no AdamW state"),                               \
        KOPT_STRING(0, "lora", &(o)->lora, "SPEC",                                                 \
                    "train only low-rank adapters: r=8,alpha=16,targets=qkv,proj,fc,fcproj"        \
                    "[,dropout=0.05]; ckpt records then carry just the adapters and the base's "   \
                    "hash (kiln ckpt merge folds them in)",                                        \
                    .conflicts = "freeze", .why = "--lora freezes the whole base already"),        \
        KOPT_STRING(0, "train", &(o)->train, "SPEC",                                               \
                    "with --lora: these tensors train too (--freeze's syntax, e.g. "               \
                    "ln_f,blocks:5) and travel in the adapter checkpoint",                         \
                    .needs = "lora", .why = "else use --freeze"),                                  \
        KOPT_CALL(0, "add-class", (o), kengine_add_class_option, "NAME[=FROM]",                    \
                  "a new class token, its embedding row copied from class FROM (default: the "     \
                  "mean of the class rows); repeatable; the stream must be tokenized with the "    \
                  "base's classes plus NAME"),                                                     \
        KOPT_BOOL(0, "train-new-classes", &(o)->new_classes_only,                                  \
                  "with --add-class: only the new classes' embedding rows train, everything "      \
                  "else stays bit for bit (textual inversion); ckpt records carry just those "     \
                  "rows, an adapter that kiln ckpt merge folds into the base",                     \
                  .needs = "add-class", .conflicts = "lora"),                                      \
        KOPT_BOOL(0, "save-start", &(o)->save_start,                                               \
                  "a ckpt record of the model as it starts (step 0, after --add-class), so "       \
                  "kiln eval measures it before fine-tuning")

/* The --model names, NULL-terminated. */
extern const char *const kengine_presets[];

/* Defaults: accum 1, log every 10 steps, lr 1e-3. */
void kengine_opts_init(kengine_opts *o);
/* Check the combination and fill the defaults that depend on it (fine-tuning: lr 3e-4,
 * LoRA 1e-3, warm-up steps/20; pretraining: warm-up min(100, steps/10)).  0, or 2 with the
 * reason in err. */
int kengine_opts_resolve(kengine_opts *o, char *err, size_t errsz);

typedef struct kengine kengine;

/* The stage's writer (before kengine_open): its --out (stdout by default) on rank 0 of a
 * data-parallel run and in one process; /dev/null on every other rank, so the run's
 * downstream sees one stream, hdr to eos, from rank 0 (lib/run/dist.h). */
kwriter *kengine_writer(const kiln_cli *cli);

/* Build the model and optimizer the options describe for the stream whose hdr is given
 * (its tokenizer sets the vocabulary and travels in every ckpt), and write this stage's
 * hdr to w.  The objective is borrowed; the engine calls its free at kengine_free. */
kengine *kengine_open(const kengine_opts *o, kobjective *obj, const krec *hdr, kwriter *w);
/* Train until --steps, the end of the input, or a stop signal; then the last metrics and
 * ckpt.  0, or 65 with the reason in err (a record the objective refused, or a NaN/Inf:
 * then the last ckpt written is the last good state). */
int kengine_run(kengine *e, kreader *r, char *err, size_t errsz);
void kengine_free(kengine *e);

/* ---- for a trainer whose loop is not one record per step (kiln ppo: generate, score, update) ---
 * kengine_open builds the model and optimizer and writes the hdr as for kengine_run; the
 * caller then accumulates gradients into the model itself and calls these. */

/* One optimizer step on the gradients in the model now: the NaN/Inf guard, clipping to norm
 * 1, the schedule (warm-up + cosine over --steps), AdamW.  0, or 65 with the reason in err. */
int kengine_update(kengine *e, char *err, size_t errsz);
/* A ckpt record of the model, optimizer and step now, with this data cursor. */
void kengine_write_ckpt(kengine *e, uint64_t cursor);
/* Exact resume of a full model's run from a checkpoint it wrote: weights, moments, step;
 * returns its cursor.  Exits (65/74) on a bad file, 2 for a LoRA run. */
uint64_t kengine_resume(kengine *e, const char *path);
/* The mean --ptx loss over the batches since the last call (NAN: none), for a trainer that
 * writes its own metrics (kiln ppo); the engine's metrics records take it themselves. */
double kengine_take_ptx_loss(kengine *e);
kpool *kengine_pool(kengine *e);
double kengine_lr(const kengine *e);        /* of the last update */
double kengine_grad_norm(const kengine *e); /* of the last update, before clipping */

/* The model being trained (for tests and objectives that need more than step()). */
gpt *kengine_model(kengine *e);
uint64_t kengine_step(const kengine *e);

#endif
