/* kiln-train — batches in, a trained model out: metrics and ckpt records. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/store.h"
#include "stream/options.h"
#include "run/finetune.h"
#include "model/weights.h"
#include "model/gpt.h"
#include "ckpt/gptckpt.h"
#include "model/lora.h"
#include "model/optim.h"
#include "data/sample.h"
#include "data/tokenizer.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "train a GPT on batch records; write metrics and ckpt records",
    .usage = "kiln train [--model PRESET | --layers N --dim N --heads N --ctx N] [--steps N]\n"
             "                  [--lr X] [--warmup N] [--accum N] [--every N] [--init FILE] ...",
    .notes =
        "AdamW (betas 0.9, 0.95, eps 1e-8, weight decay 0.1 on matrices), gradients clipped to\n"
        "global norm 1.  The vocabulary comes from the hdr's tokenizer.  metrics: step, loss\n"
        "(mean over the steps since the last record), lr, grad_norm, tokens_per_s, elapsed_s,\n"
        "optim_bytes (the AdamW moments held).\n"
        "ckpt: config, tokenizer, step, cursor (resume data with kiln load --skip CURSOR),\n"
        "seed, tensors (Hugging Face GPT-2 names), optim.  SIGINT/SIGTERM: the step finishes,\n"
        "a final ckpt goes out, then eos interrupted.  A NaN/Inf loss or gradient stops the run\n"
        "(exit 65) after the last good ckpt, naming the step and the tensor.\n"
        "Records other than batch pass through.\n"
        "example:\n"
        "  kiln load text:examples/data/moby-dick.txt | kiln tokenize --bytes \\\n"
        "    | kiln batch -B 8 -T 256 --pack | kiln train --model small --steps 50 | kiln show\n",
};

#define MAX_NEW_CLASSES 16

typedef struct options {
    const char *preset, *init, *freeze, *lora, *train;
    ft_new_class add[MAX_NEW_CLASSES];
    int n_add;
    bool finetune, have_lr, save_start;
    int layers, dim, heads, ctx, threads;
    uint64_t steps, warmup, accum, log_every, every, seed;
    bool have_seed, have_warmup;
    double lr;
} options;

typedef struct trainer {
    options o;
    kwriter *w;
    const msgpack_object *tokenizer; /* the hdr's, copied into every ckpt */
    kpool *pool;
    gpt *m;
    adamw *opt;
    kparam *ps; /* the tensors that train (all of them unless fine-tuning says otherwise) */
    int n_ps;
    bool *frozen; /* per model tensor, or NULL */
    lora *lora;   /* --lora adapters, or NULL */
    char base_hash[32];
    uint64_t step, micro, cursor, seed;
    double lr, loss_sum, norm, t_start, t_log;
    uint64_t logged_steps, tokens_since_log;
    float step_loss;
    int32_t *x, *y;
    uint8_t *mask;
    size_t cap;
} trainer;

static void preset_config(const char *name, gpt_config *c) {
    struct {
        const char *name;
        int layers, dim, heads;
    } presets[] = {{"tiny", 2, 64, 4}, {"small", 4, 256, 4}, {"char", 6, 384, 6}};
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(name, presets[i].name)) {
            c->n_layer = presets[i].layers, c->n_embd = presets[i].dim;
            c->n_head = presets[i].heads, c->n_ctx = 256;
            return;
        }
    kiln_usage_error("unknown --model '%s' (tiny, small, char)", name);
}

/* ---- records out ---------------------------------------------------------------------- */

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* A map name -> F32 tensor over one of the model-shaped buffers. */
static void pack_tensor_map(kwriter *w, const gpt *m, const float *buf) {
    msgpack_pack_map(kw_packer(w), (size_t)m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        pack_str(kw_packer(w), t->name);
        ktensor kt = ktensor_make(KT_F32, buf + t->offset, t->ndim, t->shape);
        kw_tensor_value(w, &kt);
    }
}

/* The trainable tensors as a map: their values (moments NULL), or their slices of the
 * compact moment buffer. */
static void pack_param_map(kwriter *w, const trainer *T, const float *moments) {
    msgpack_pack_map(kw_packer(w), (size_t)T->n_ps);
    for (int i = 0; i < T->n_ps; i++) {
        const kparam *p = &T->ps[i];
        pack_str(kw_packer(w), p->name);
        int j = gpt_find_tensor(T->m, p->name);
        const gpt_tensor *t =
            j >= 0 ? &T->m->tensors[j] : &T->lora->tensors[lora_find_tensor(T->lora, p->name)];
        ktensor kt = ktensor_make(KT_F32, moments ? moments + p->moff : p->p, t->ndim, t->shape);
        kw_tensor_value(w, &kt);
    }
}

/* The `adapter` map of a LoRA checkpoint (lib/ckpt/adapter.h). */
static void emit_adapter_info(const trainer *T) {
    const lora_config *c = &T->lora->cfg;
    char targets[64];
    lora_targets_str(c->targets, targets, sizeof targets);
    kw_key(T->w, "adapter");
    msgpack_packer *pk = kw_packer(T->w);
    msgpack_pack_map(pk, 6);
    pack_str(pk, "kind");
    pack_str(pk, "lora");
    pack_str(pk, "r");
    msgpack_pack_uint64(pk, (uint64_t)c->r);
    pack_str(pk, "alpha");
    msgpack_pack_double(pk, c->alpha);
    pack_str(pk, "dropout");
    msgpack_pack_double(pk, c->dropout);
    pack_str(pk, "targets");
    pack_str(pk, targets);
    pack_str(pk, "base_hash");
    pack_str(pk, T->base_hash);
}

static void emit_ckpt(trainer *T) {
    kwriter *w = T->w;
    const gpt_config *c = &T->m->cfg;
    kwriter_begin(w, "ckpt");
    kw_u64(w, "step", T->step);
    kw_key(w, "config");
    msgpack_packer *pk = kw_packer(w);
    msgpack_pack_map(pk, 6);
    const char *keys[] = {"n_layer", "n_embd", "n_head", "n_ctx", "vocab"};
    int vals[] = {c->n_layer, c->n_embd, c->n_head, c->n_ctx, c->vocab};
    for (int i = 0; i < 5; i++) {
        pack_str(pk, keys[i]);
        msgpack_pack_uint64(pk, (uint64_t)vals[i]);
    }
    pack_str(pk, "head");
    pack_str(pk, c->head == GPT_HEAD_SCALAR ? "scalar" : "lm");
    if (T->tokenizer) kw_obj(w, "tokenizer", T->tokenizer);
    kw_u64(w, "cursor", T->cursor);
    kw_u64(w, "seed", T->seed);
    if (T->lora) emit_adapter_info(T);
    kw_key(w, "tensors");
    if (T->lora)
        pack_param_map(w, T, NULL); /* an adapter checkpoint: just what trained */
    else
        pack_tensor_map(w, T->m, T->m->params);
    kw_key(w, "optim");
    pk = kw_packer(w);
    msgpack_pack_map(pk, 4);
    pack_str(pk, "step");
    msgpack_pack_uint64(pk, T->opt->step);
    pack_str(pk, "lr");
    msgpack_pack_double(pk, T->lr);
    pack_str(pk, "m");
    pack_param_map(w, T, T->opt->m);
    pack_str(kw_packer(w), "v");
    pack_param_map(w, T, T->opt->v);
    kwriter_end(w);
}

static void emit_metrics(trainer *T) {
    double now = kiln_now(), loss = T->loss_sum / (double)T->logged_steps;
    kwriter_begin(T->w, "metrics");
    kw_str(T->w, "stage", "train");
    kw_u64(T->w, "step", T->step);
    kw_f64(T->w, "loss", loss);
    kw_f64(T->w, "lr", T->lr);
    kw_f64(T->w, "grad_norm", T->norm);
    kw_f64(T->w, "tokens_per_s", (double)T->tokens_since_log / (now - T->t_log));
    kw_f64(T->w, "elapsed_s", now - T->t_start);
    kw_f64(T->w, "optim_bytes", (double)T->opt->n * 2 * sizeof(float));
    kwriter_end(T->w);
    if (isatty(2))
        fprintf(stderr, "%s: step %llu  loss %.4f  lr %.2e  %.0f tokens/s\n", kiln_prog(),
                (unsigned long long)T->step, loss, T->lr,
                (double)T->tokens_since_log / (now - T->t_log));
    T->loss_sum = 0;
    T->logged_steps = 0;
    T->tokens_since_log = 0;
    T->t_log = now;
}

/* A NaN or Inf: the stream gets an eos "error" after the last good ckpt, and we exit 65. */
_Noreturn static void diverged(trainer *T, const char *what) {
    kiln_warn("step %llu: %s is not finite; stopping (the last ckpt record is the last good "
              "state; lower --lr or raise --warmup)",
              (unsigned long long)T->step + 1, what);
    kwriter_close(T->w, "error");
    exit(EX_KILN_DATA);
}

/* ---- training ----------------------------------------------------------------------------- */

/* The batch's tensors into our buffers, checked against the model. */
static void read_batch(trainer *T, const krec *r, int *B, int *Tlen) {
    ktensor x, y, mask;
    unsigned long long seq = (unsigned long long)r->seq;
    if (!krec_tensor(r, "x", &x) || !krec_tensor(r, "y", &y) || x.dtype != KT_I32 ||
        y.dtype != KT_I32 || x.ndim != 2 || y.ndim != 2 || x.shape[0] != y.shape[0] ||
        x.shape[1] != y.shape[1])
        kiln_die(EX_KILN_DATA, "record %llu: batch needs x and y, I32 [B,T] of one shape", seq);
    if (x.shape[1] > (uint64_t)T->m->cfg.n_ctx)
        kiln_die(EX_KILN_DATA, "record %llu: batch T %llu exceeds the model context %d", seq,
                 (unsigned long long)x.shape[1], T->m->cfg.n_ctx);
    if (x.shape[0] * x.shape[1] > (1u << 26))
        kiln_die(EX_KILN_DATA, "record %llu: batch of %llu x %llu tokens is too large", seq,
                 (unsigned long long)x.shape[0], (unsigned long long)x.shape[1]);
    size_t n = (size_t)(x.shape[0] * x.shape[1]);
    if (n > T->cap) {
        T->cap = n;
        T->x = xrealloc(T->x, xmul(n, sizeof(int32_t)));
        T->y = xrealloc(T->y, xmul(n, sizeof(int32_t)));
        T->mask = xrealloc(T->mask, n);
    }
    ktensor_copy(&x, T->x);
    ktensor_copy(&y, T->y);
    if (krec_get(r, "mask")) {
        if (!krec_tensor(r, "mask", &mask) || mask.dtype != KT_U8 || mask.ndim != 2 ||
            mask.shape[0] != x.shape[0] || mask.shape[1] != x.shape[1])
            kiln_die(EX_KILN_DATA, "record %llu: mask is not U8 [B,T] like x", seq);
        ktensor_copy(&mask, T->mask);
    } else {
        memset(T->mask, 1, n);
    }
    int V = T->m->cfg.vocab;
    for (size_t i = 0; i < n; i++)
        if (T->x[i] < 0 || T->x[i] >= V || T->y[i] < 0 || T->y[i] >= V)
            kiln_die(EX_KILN_DATA, "record %llu: token %d is outside the vocabulary (%d)", seq,
                     T->x[i] < 0 || T->x[i] >= V ? T->x[i] : T->y[i], V);
    *B = (int)x.shape[0];
    *Tlen = (int)x.shape[1];
    T->cursor = krec_u64_or(r, "cursor", T->cursor);
}

/* One micro-batch; every --accum of them make an optimizer step. */
static void train_batch(trainer *T, const krec *r) {
    int B, Tlen;
    read_batch(T, r, &B, &Tlen);
    gpt *m = T->m;
    if (T->micro == 0) {
        gpt_zero_grad(m);
        T->step_loss = 0;
    }
    float loss = gpt_forward(m, T->x, T->y, T->mask, B, Tlen);
    if (!isfinite(loss)) diverged(T, "the loss");
    gpt_backward(m, 1.0f / (float)T->o.accum);
    T->step_loss += loss / (float)T->o.accum;
    T->tokens_since_log += (uint64_t)B * Tlen;
    if (++T->micro < T->o.accum) return;
    T->micro = 0;

    T->norm = params_grad_norm(T->pool, T->ps, T->n_ps);
    if (!isfinite(T->norm)) {
        int bad = params_first_nonfinite(T->ps, T->n_ps);
        char what[128];
        snprintf(what, sizeof what, "the gradient of %s", bad >= 0 ? T->ps[bad].name : "?");
        diverged(T, what);
    }
    T->lr = lr_at(T->step, T->o.lr, T->o.warmup, T->o.steps);
    adamw_update_params(T->opt, T->pool, T->ps, T->n_ps, T->lr, T->norm);
    T->step++;
    T->loss_sum += T->step_loss;
    T->logged_steps++;
    if (T->step % T->o.log_every == 0) emit_metrics(T);
    if (T->o.every && T->step % T->o.every == 0) emit_ckpt(T);
}

static const char *const presets[] = {"tiny", "small", "char", NULL};

/* --add-class NAME[=FROM], once per new class. */
static bool add_class_option(void *dest, const char *arg, char *err, size_t errsz) {
    options *o = dest;
    if (o->n_add == MAX_NEW_CLASSES)
        return kiln_errf(err, errsz, 0, "at most %d new classes", MAX_NEW_CLASSES);
    return ft_new_class_parse(arg, &o->add[o->n_add++], err, errsz);
}

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    *o = (options){.accum = 1, .log_every = 10, .lr = 1e-3};
    kopt rows[] = {
        KOPT_GROUP("model"),
        KOPT_CHOICE(0, "model", &o->preset, "PRESET", presets,
                    "tiny (2 layers, 64 wide, 4 heads), small (4, 256, 4), char (6, 384, 6); "
                    "context 256 (default small)"),
        KOPT_INT(0, "layers", &o->layers, "N", 1, 80,
                 "layers: these four set or override the shape of the preset or of --init"),
        KOPT_INT(0, "dim", &o->dim, "N", 1, 16384, "width, a multiple of --heads"),
        KOPT_INT(0, "heads", &o->heads, "N", 1, 16384, "attention heads"),
        KOPT_INT(0, "ctx", &o->ctx, "N", 1, 65536, "context length in tokens"),
        KOPT_GROUP("training"),
        KOPT_U64(0, "steps", &o->steps, "N", 0, UINT64_MAX,
                 "stop after optimizer step N (default: when the input ends); the cosine "
                 "schedule decays to lr/10 at step N"),
        KOPT_DOUBLE(0, "lr", &o->lr, "X", 0, 10, "peak learning rate (default 1e-3)",
                    .flags = KOPT_OPEN_MIN | KOPT_OPEN_MAX, .given = &o->have_lr),
        KOPT_U64(0, "warmup", &o->warmup, "N", 0, UINT64_MAX,
                 "linear warm-up steps (default min(100, steps/10))", .given = &o->have_warmup),
        KOPT_U64(0, "accum", &o->accum, "N", 1, 65536,
                 "batches per optimizer step: gradient accumulation (default 1)"),
        KOPT_U64(0, "seed", &o->seed, "N", 0, UINT64_MAX,
                 "initialisation seed (default: the hdr's seed)", .given = &o->have_seed),
        KOPT_U64(0, "log-every", &o->log_every, "N", 1, UINT64_MAX,
                 "a metrics record every N steps (default 10)"),
        KOPT_U64(0, "every", &o->every, "N", 0, UINT64_MAX,
                 "a ckpt record every N steps (default 0: only at the end)"),
        KOPT_STRING(0, "init", &o->init, "FILE",
                    "start from a safetensors checkpoint (kiln ckpt writes them): its weights, "
                    "optimizer state and step; its shape unless given"),
        KOPT_THREADS(&o->threads),
        KOPT_GROUP("fine-tuning (--init is then a pretrained base: its weights only, step 0, "
                   "fresh AdamW, default lr 3e-4 (LoRA 1e-3) and warm-up steps/20; "
                   "docs/stages-finetune.md)"),
        KOPT_BOOL(0, "finetune", &o->finetune, "full fine-tuning of every tensor"),
        KOPT_STRING(0, "freeze", &o->freeze, "SPEC",
                    "freeze tensors: embeddings, wte, wpe, ln_f, blocks:A-B, all-but-head, or "
                    "tensor names / module prefixes, comma-separated; frozen tensors cost no "
                    "weight-gradient work and hold no AdamW state"),
        KOPT_STRING(0, "lora", &o->lora, "SPEC",
                    "train only low-rank adapters: r=8,alpha=16,targets=qkv,proj,fc,fcproj"
                    "[,dropout=0.05]; ckpt records then carry just the adapters and the base's "
                    "hash (kiln ckpt merge folds them in)",
                    .conflicts = "freeze", .why = "--lora freezes the whole base already"),
        KOPT_STRING(0, "train", &o->train, "SPEC",
                    "with --lora: these tensors train too (--freeze's syntax, e.g. "
                    "ln_f,blocks:5) and travel in the adapter checkpoint",
                    .needs = "lora", .why = "else use --freeze"),
        KOPT_CALL(0, "add-class", o, add_class_option, "NAME[=FROM]",
                  "a new class token, its embedding row copied from class FROM (default: the "
                  "mean of the class rows); repeatable; the stream must be tokenized with the "
                  "base's classes plus NAME"),
        KOPT_BOOL(0, "save-start", &o->save_start,
                  "a ckpt record of the model as it starts (step 0, after --add-class), so "
                  "kiln eval measures it before fine-tuning"),
        KOPT_STREAM(cli),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
    o->finetune |= o->freeze || o->lora || o->n_add;
    if (o->finetune && !o->init) kiln_usage_error("fine-tuning needs --init BASE.safetensors");
    if (o->finetune && !o->have_lr) o->lr = o->lora ? 1e-3 : 3e-4;
    if (!o->have_warmup && o->finetune) o->warmup = o->steps ? o->steps / 20 : 20;
    if (!o->have_warmup && !o->finetune)
        o->warmup = o->steps ? (o->steps / 10 < 100 ? o->steps / 10 : 100) : 100;
}

/* The model shape: preset, then the checkpoint's, then explicit options; vocab from hdr. */
static gpt_config model_config(const options *o, const kckpt *ck, uint32_t vocab) {
    gpt_config c = {0};
    preset_config(o->preset ? o->preset : "small", &c);
    if (ck && !o->preset) gpt_config_from_ckpt(ck, &c);
    if (o->layers) c.n_layer = o->layers;
    if (o->dim) c.n_embd = o->dim;
    if (o->heads) c.n_head = o->heads;
    if (o->ctx) c.n_ctx = o->ctx;
    uint64_t v;
    c.vocab = (int)vocab;
    if (ck && kckpt_config_u64(ck, "vocab", &v) && v != vocab)
        kiln_die(EX_KILN_DATA, "%s: vocabulary %llu, but the stream's tokenizer has %u", ck->path,
                 (unsigned long long)v, vocab);
    const char *bad = gpt_config_check(&c);
    if (bad) kiln_usage_error("model: %s", bad);
    return c;
}

/* Freezing, adapters, new classes: which tensors train, and how the model grows. */
static void setup_finetune(trainer *T, const int *rows, const int mean[2]) {
    char err[512];
    if (T->o.lora) {
        lora_config lc;
        if (!lora_parse(T->o.lora, &lc, err, sizeof err)) kiln_usage_error("--lora: %s", err);
        gpt_weights_hash(T->m, T->base_hash, sizeof T->base_hash); /* before any class is added */
        T->lora = lora_create(&lc, &T->m->cfg, T->seed);
        T->lora->training = true;
    }
    if (T->o.n_add) {
        gpt *grown = gpt_grow_vocab(T->m, T->o.n_add, rows, mean);
        gpt_free(T->m);
        T->m = grown;
    }
    gpt *m = T->m;
    T->frozen = xcalloc((size_t)m->n_tensors, sizeof(bool));
    if (T->o.freeze && !ft_freeze_parse(m, T->o.freeze, T->frozen, err, sizeof err))
        kiln_usage_error("%s", err);
    for (int i = 0; T->lora && i < m->n_tensors; i++) /* LoRA: the base stays as it is, */
        T->frozen[i] = !(T->o.n_add && !strcmp(m->tensors[i].name, "transformer.wte.weight"));
    if (T->o.train) { /* --lora --train SPEC: named modules train beside the adapters */
        bool *named = xcalloc((size_t)m->n_tensors, sizeof(bool));
        if (!ft_freeze_parse(m, T->o.train, named, err, sizeof err))
            kiln_usage_error("--train: %s", err + (strncmp(err, "--freeze ", 9) ? 0 : 9));
        for (int i = 0; i < m->n_tensors; i++) T->frozen[i] &= !named[i];
        free(named);
    }
    m->frozen = T->frozen; /* (new class rows need wte to train) */
    m->lora = T->lora;
    size_t n = 0, all = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        all += m->tensors[i].numel;
        n += T->frozen[i] ? 0 : m->tensors[i].numel;
    }
    if (T->lora) n += T->lora->n_params;
    kiln_warn("fine-tuning %s: %zu of %zu parameters train%s%s", T->o.init, n, all,
              T->lora ? " (LoRA adapters)" : "", T->o.freeze ? " (the rest frozen)" : "");
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    trainer T = {0};
    parse_options(argc, argv, &cli, &T.o);

    kreader *r = kiln_cli_reader(&cli);
    T.w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    T.tokenizer = krec_get(hdr, "tokenizer");
    if (!T.tokenizer) kiln_die(EX_KILN_DATA, "hdr has no tokenizer (run kiln tokenize)");
    ktokenizer tok;
    char err[512];
    size_t total;
    if (!ktok_from_obj(T.tokenizer, &tok, err, sizeof err)) kiln_die(EX_KILN_DATA, "hdr: %s", err);
    uint32_t vocab = tok.vocab;

    kckpt *ck = T.o.init ? kckpt_load(T.o.init, !T.o.finetune) : NULL;
    if (ck && st_meta(ck->file, "adapter")) {
        kckpt_free(ck);
        kiln_die(EX_KILN_DATA,
                 "--init %s: a LoRA adapter, not a model: give its base, or fold it in first "
                 "(kiln ckpt merge BASE ADAPTER -o MODEL)",
                 T.o.init);
    }
    int rows[MAX_NEW_CLASSES], mean[2];
    bool tok_ok = ck && ck->tokenizer ? ft_check_tokenizer(ck->tokenizer, &tok, T.o.add, T.o.n_add,
                                                           rows, mean, err, sizeof err)
                                      : !T.o.n_add;
    if (!(ck && ck->tokenizer) && T.o.n_add)
        snprintf(err, sizeof err, "--add-class needs a checkpoint with a tokenizer");
    ktok_free(&tok);
    if (!tok_ok) {
        kckpt_free(ck); /* (a clean exit for the leak checker) */
        kiln_die(EX_KILN_DATA, "--init %s: %s", T.o.init, err);
    }
    gpt_config cfg = model_config(&T.o, ck, vocab - (uint32_t)T.o.n_add);
    T.seed =
        T.o.have_seed ? T.o.seed : (ck && ck->has_seed ? ck->seed : krec_u64_or(hdr, "seed", 0));
    T.pool = kpool_create(T.o.threads);
    T.m = gpt_create(&cfg, T.pool, T.seed);
    if (T.o.finetune) { /* a pretrained base: its weights, a new run */
        gpt_load_ckpt(T.m, ck, NULL);
        setup_finetune(&T, rows, mean);
    }
    T.ps = ft_params(T.m, T.frozen, T.lora, &T.n_ps, &total);
    T.opt = adamw_create(total);
    if (ck && !T.o.finetune) { /* resume: weights, moments, step and data cursor */
        gpt_load_ckpt(T.m, ck, T.opt);
        T.step = ck->step;
        T.cursor = ck->cursor;
    }
    kckpt_free(ck);
    if (T.o.steps && T.step >= T.o.steps)
        kiln_usage_error("the checkpoint is at step %llu, past --steps %llu",
                         (unsigned long long)T.step, (unsigned long long)T.o.steps);

    kwriter_hdr_begin(T.w, hdr, "metrics", T.seed);
    if (T.o.steps) kw_u64(T.w, "steps", T.o.steps); /* kiln show --progress reads it */
    kwriter_end(T.w);
    if (T.o.save_start) emit_ckpt(&T);
    T.t_start = T.t_log = kiln_now();
    uint64_t start_step = T.step;
    krec rec;
    while (!kwriter_gone(T.w) && kreader_next(r, &rec)) {
        if (krec_is(&rec, "batch"))
            train_batch(&T, &rec);
        else
            kwriter_pass(T.w, &rec);
        if (kiln_stop_signal() || (T.o.steps && T.step >= T.o.steps)) break;
    }
    if (!kwriter_gone(T.w)) {
        if (T.logged_steps) emit_metrics(&T);
        if (T.step > start_step && !(T.o.every && T.step % T.o.every == 0)) emit_ckpt(&T);
    }
    adamw_free(T.opt);
    free(T.ps);
    free(T.frozen);
    lora_free(T.lora);
    gpt_free(T.m);
    kpool_free(T.pool);
    free(T.x), free(T.y), free(T.mask);
    kiln_finish(r, T.w);
}
