/* engine — model setup, the training loop, metrics and ckpt records. */
#include "run/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/adapter.h"
#include "ckpt/config.h"
#include "ckpt/load.h"
#include "ckpt/record.h"
#include "ckpt/safetensors.h"
#include "core/util.h"
#include "data/json.h"
#include "data/sample.h"
#include "data/tokenizer.h"
#include "model/lora.h"
#include "model/optim.h"
#include "model/weights.h"

struct kengine {
    kengine_opts o;
    kobjective *obj;
    int n_metrics;
    kwriter *w;
    const msgpack_object *tokenizer; /* the hdr's (or --init's), copied into every ckpt */
    msgpack_sbuffer tok_buf;         /* the --init checkpoint's tokenizer, packed, when */
    msgpack_unpacked tok_up;         /* the stream has none (pref records of kiln load jsonl:) */
    bool own_tokenizer;
    kpool *pool;
    gpt *m;
    adamw *opt;
    kparam *ps; /* the tensors that train (all of them unless fine-tuning says otherwise) */
    int n_ps;
    bool *frozen; /* per model tensor, or NULL */
    lora *lora;   /* --lora adapters, or NULL */
    char base_hash[32];
    gpt_tensor rows; /* --train-new-classes: the new rows of wte, the one tensor that trains */
    uint64_t step, micro, cursor, seed, start_step;
    double lr, norm, t_start, t_log;
    double first_total; /* the run's length projected at the first metrics record */
    /* sums over the steps since the last metrics record */
    double loss_sum, metric_sum[KOBJ_MAX_METRICS];
    uint64_t logged_steps, tokens_since_log;
    /* this optimizer step so far (over its micro-batches) */
    double step_loss, step_metric[KOBJ_MAX_METRICS];
};

/* ---- options -------------------------------------------------------------------------------- */

const char *const kengine_presets[] = {"tiny", "small", "char", NULL};

bool kengine_add_class_option(void *dest, const char *arg, char *err, size_t errsz) {
    kengine_opts *o = dest;
    if (o->n_add == KENGINE_MAX_NEW_CLASSES)
        return kiln_errf(err, errsz, 0, "at most %d new classes", KENGINE_MAX_NEW_CLASSES);
    return ft_new_class_parse(arg, &o->add[o->n_add++], err, errsz);
}

void kengine_opts_init(kengine_opts *o) {
    *o = (kengine_opts){.accum = 1, .log_every = 10, .lr = 1e-3};
}

int kengine_opts_resolve(kengine_opts *o, char *err, size_t errsz) {
    gpt_config unused;
    const int U = EX_KILN_USAGE;
    if (o->preset && !kcfg_preset(o->preset, &unused))
        return kiln_errf(err, errsz, U, "unknown --model '%s' (%s)", o->preset,
                         kcfg_preset_names());
    o->finetune |= o->freeze || o->lora || o->n_add;
    if (o->finetune && !o->init) return kiln_errf(err, errsz, U, "fine-tuning needs --init BASE");
    if (o->train && !o->lora)
        return kiln_errf(err, errsz, U, "--train goes with --lora (else use --freeze)");
    if (o->freeze && o->lora)
        return kiln_errf(err, errsz, U, "--lora freezes the whole base already; drop --freeze");
    if (o->finetune && !o->have_lr) o->lr = o->lora ? 1e-3 : 3e-4;
    if (!o->have_warmup && o->finetune) o->warmup = o->steps ? o->steps / 20 : 20;
    if (!o->have_warmup && !o->finetune)
        o->warmup = o->steps ? (o->steps / 10 < 100 ? o->steps / 10 : 100) : 100;
    return 0;
}

/* ---- the model ------------------------------------------------------------------------------ */

/* The model shape: preset, then the checkpoint's, then explicit options; vocab from hdr. */
static gpt_config model_config(const kengine_opts *o, const kckpt *ck, uint32_t vocab,
                               gpt_head head) {
    gpt_config c = {0};
    kcfg_preset(o->preset ? o->preset : "small", &c);
    if (ck && !o->preset) gpt_config_from_ckpt(ck, &c);
    if (o->layers) c.n_layer = o->layers;
    if (o->dim) c.n_embd = o->dim;
    if (o->heads) c.n_head = o->heads;
    if (o->ctx) c.n_ctx = o->ctx;
    c.head = head;
    uint64_t v;
    c.vocab = (int)vocab;
    if (ck && kckpt_config_u64(ck, "vocab", &v) && v != vocab)
        kiln_die(EX_KILN_DATA, "%s: vocabulary %llu, but the stream's tokenizer has %u", ck->path,
                 (unsigned long long)v, vocab);
    const char *bad = gpt_config_check(&c);
    if (bad) kiln_usage_error("model: %s", bad);
    return c;
}

/* The frozen flags --freeze and --lora/--train ask for. */
static void set_frozen(kengine *e) {
    gpt *m = e->m;
    char err[512];
    e->frozen = xcalloc((size_t)m->n_tensors, sizeof(bool));
    if (e->o.freeze && !ft_freeze_parse(m, e->o.freeze, e->frozen, err, sizeof err))
        kiln_usage_error("%s", err);
    for (int i = 0; e->lora && i < m->n_tensors; i++) /* LoRA: the base stays as it is, */
        e->frozen[i] = !(e->o.n_add && !strcmp(m->tensors[i].name, "transformer.wte.weight"));
    if (e->o.train) { /* --lora --train SPEC: named modules train beside the adapters */
        bool *named = xcalloc((size_t)m->n_tensors, sizeof(bool));
        if (!ft_freeze_parse(m, e->o.train, named, err, sizeof err))
            kiln_usage_error("--train: %s", err + (strncmp(err, "--freeze ", 9) ? 0 : 9));
        for (int i = 0; i < m->n_tensors; i++) e->frozen[i] &= !named[i];
        free(named);
    }
    for (int i = 0; e->o.new_classes_only && i < m->n_tensors; i++) /* wte's gradient only */
        e->frozen[i] = strcmp(m->tensors[i].name, "transformer.wte.weight") != 0;
    m->frozen = e->frozen; /* (new class rows need wte to train) */
}

/* --train-new-classes: the optimizer sees the new rows of wte alone, so every other weight,
 * the old rows included, stays as it was bit for bit (no update, no weight decay). */
static kparam *new_rows_param(kengine *e, size_t *total) {
    gpt *m = e->m;
    int C = m->cfg.n_embd, V0 = m->cfg.vocab - e->o.n_add;
    e->rows = (gpt_tensor){
        .numel = (size_t)e->o.n_add * C, .ndim = 2, .shape = {(uint64_t)e->o.n_add, (uint64_t)C}};
    snprintf(e->rows.name, sizeof e->rows.name, "%s", KADAPTER_ROWS_TENSOR);
    kparam *p = xcalloc(1, sizeof *p);
    *p = (kparam){.name = e->rows.name,
                  .p = m->p.wte + (size_t)V0 * C,
                  .g = m->g.wte + (size_t)V0 * C,
                  .numel = e->rows.numel};
    e->n_ps = 1;
    *total = e->rows.numel;
    return p;
}

/* Freezing, adapters, new classes: which tensors train, and how the model grows. */
static void setup_finetune(kengine *e, const int *rows, const int mean[2]) {
    char err[512];
    if (e->o.lora || e->o.new_classes_only)
        gpt_weights_hash(e->m, e->base_hash, sizeof e->base_hash); /* before classes grow */
    if (e->o.lora) {
        lora_config lc;
        if (!lora_parse(e->o.lora, &lc, err, sizeof err)) kiln_usage_error("--lora: %s", err);
        e->lora = lora_create(&lc, &e->m->cfg, e->seed);
        e->lora->training = true;
    }
    if (e->o.n_add) {
        gpt *grown = gpt_grow_vocab(e->m, e->o.n_add, rows, mean);
        gpt_free(e->m);
        e->m = grown;
    }
    set_frozen(e);
    gpt *m = e->m;
    m->lora = e->lora;
    size_t n = 0, all = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        all += m->tensors[i].numel;
        n += e->frozen[i] ? 0 : m->tensors[i].numel;
    }
    if (e->lora) n += e->lora->n_params;
    if (e->o.new_classes_only) n = (size_t)e->o.n_add * (size_t)m->cfg.n_embd;
    kiln_warn("fine-tuning %s: %zu of %zu parameters train%s%s", e->o.init, n, all,
              e->lora ? " (LoRA adapters)" : "", e->o.freeze ? " (the rest frozen)" : "");
}

/* The --init checkpoint, checked against the stream's tokenizer; rows/mean say where new
 * class rows start (lib/run/finetune.h ft_check_tokenizer). */
static kckpt *open_init(const kengine_opts *o, const ktokenizer *tok, int *rows, int mean[2]) {
    char err[512];
    kckpt *ck = o->init ? kckpt_load(o->init, !o->finetune) : NULL;
    if (ck && st_meta(ck->file, "adapter")) {
        kckpt_free(ck);
        kiln_die(EX_KILN_DATA,
                 "--init %s: a LoRA adapter, not a model: give its base, or fold it in first "
                 "(kiln ckpt merge BASE ADAPTER -o MODEL)",
                 o->init);
    }
    bool ok = ck && ck->tokenizer ? ft_check_tokenizer(ck->tokenizer, tok, o->add, o->n_add, rows,
                                                       mean, err, sizeof err)
                                  : !o->n_add;
    if (!(ck && ck->tokenizer) && o->n_add)
        snprintf(err, sizeof err, "--add-class needs a checkpoint with a tokenizer");
    if (!ok) {
        kckpt_free(ck); /* (a clean exit for the leak checker) */
        kiln_die(EX_KILN_DATA, "--init %s: %s", o->init, err);
    }
    return ck;
}

/* A stream without a tokenizer (text records: prefs from kiln load jsonl:) trains with the
 * --init checkpoint's, for objectives that tokenize text themselves. */
static void tokenizer_from_init(kengine *e) {
    if (!e->obj->setup || !e->o.init) return;
    kckpt *ck = kckpt_load(e->o.init, false);
    if (ck->tokenizer) {
        msgpack_sbuffer_init(&e->tok_buf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &e->tok_buf, msgpack_sbuffer_write);
        json_pack(&pk, ck->tokenizer);
        msgpack_unpacked_init(&e->tok_up);
        if (msgpack_unpack_next(&e->tok_up, e->tok_buf.data, e->tok_buf.size, NULL) !=
            MSGPACK_UNPACK_SUCCESS)
            kiln_die(EX_KILN_SOFTWARE, "%s: tokenizer metadata did not repack", e->o.init);
        e->tokenizer = &e->tok_up.data;
        e->own_tokenizer = true;
    }
    kckpt_free(ck);
}

static void build_model(kengine *e, const krec *hdr) {
    ktokenizer tok;
    char err[512];
    if (!e->tokenizer) tokenizer_from_init(e);
    if (!e->tokenizer)
        kiln_die(EX_KILN_DATA, "hdr has no tokenizer (run kiln tokenize%s)",
                 e->obj->setup ? ", or give --init a checkpoint with one" : "");
    if (!ktok_from_obj(e->tokenizer, &tok, err, sizeof err)) kiln_die(EX_KILN_DATA, "hdr: %s", err);
    int rows[KENGINE_MAX_NEW_CLASSES], mean[2];
    kckpt *ck = open_init(&e->o, &tok, rows, mean);
    uint32_t vocab = tok.vocab;
    ktok_free(&tok);
    gpt_config cfg = model_config(&e->o, ck, vocab - (uint32_t)e->o.n_add, e->obj->head);
    e->seed =
        e->o.have_seed ? e->o.seed : (ck && ck->has_seed ? ck->seed : krec_u64_or(hdr, "seed", 0));
    e->pool = kpool_create(e->o.threads);
    e->m = gpt_create(&cfg, e->pool, e->seed);
    if (e->o.finetune) { /* a pretrained base: its weights, a new run */
        gpt_load_ckpt(e->m, ck, NULL);
        setup_finetune(e, rows, mean);
    }
    size_t total;
    e->ps = e->o.new_classes_only ? new_rows_param(e, &total)
                                  : ft_params(e->m, e->frozen, e->lora, &e->n_ps, &total);
    e->opt = adamw_create(total);
    if (ck && !e->o.finetune) { /* resume: weights, moments, step and data cursor */
        gpt_load_ckpt(e->m, ck, e->o.reset_optimizer ? NULL : e->opt);
        e->step = ck->step;
        e->cursor = ck->cursor;
    }
    kckpt_free(ck);
    if (e->obj->setup && e->obj->setup(e->obj->self, e->m, e->tokenizer, err, sizeof err))
        kiln_die(EX_KILN_DATA, "%s", err);
}

kengine *kengine_open(const kengine_opts *o, kobjective *obj, const krec *hdr, kwriter *w) {
    kengine *e = xcalloc(1, sizeof *e);
    e->o = *o;
    e->obj = obj;
    e->w = w;
    while (obj->metric_names[e->n_metrics]) e->n_metrics++;
    if (e->n_metrics > KOBJ_MAX_METRICS) kiln_die(EX_KILN_SOFTWARE, "too many objective metrics");
    e->tokenizer = krec_get(hdr, "tokenizer");
    build_model(e, hdr);
    if (e->o.steps && e->step >= e->o.steps)
        kiln_usage_error("the checkpoint is at step %llu, past --steps %llu",
                         (unsigned long long)e->step, (unsigned long long)e->o.steps);
    kwriter_hdr_begin(w, hdr, "metrics", e->seed);
    if (e->o.steps) kw_u64(w, "steps", e->o.steps);             /* kiln show --progress reads it */
    if (e->own_tokenizer) kw_obj(w, "tokenizer", e->tokenizer); /* so kiln eval decodes */
    kwriter_end(w);
    e->start_step = e->step;
    return e;
}

/* ---- records out ---------------------------------------------------------------------------- */

static void emit_ckpt(kengine *e) {
    kckpt_state s = {.m = e->m,
                     .tokenizer = e->tokenizer,
                     .step = e->step,
                     .cursor = e->cursor,
                     .seed = e->seed,
                     .ps = e->ps,
                     .n_ps = e->n_ps,
                     .opt = e->opt,
                     .lr = e->lr,
                     .lora = e->lora,
                     .rows = e->o.new_classes_only ? &e->rows : NULL,
                     .first_row = e->m->cfg.vocab - e->o.n_add,
                     .base_hash = e->base_hash};
    kckpt_record_write(e->w, &s);
}

static void emit_metrics(kengine *e) {
    double now = kiln_now(), n = (double)e->logged_steps, loss = e->loss_sum / n;
    double rate = (double)e->tokens_since_log / (now - e->t_log);
    kwriter_begin(e->w, "metrics");
    kw_str(e->w, "stage", "train");
    if (strcmp(e->obj->name, "lm")) kw_str(e->w, "objective", e->obj->name);
    kw_u64(e->w, "step", e->step);
    kw_f64(e->w, "loss", loss);
    for (int i = 0; i < e->n_metrics; i++)
        kw_f64(e->w, e->obj->metric_names[i], e->metric_sum[i] / n);
    kw_f64(e->w, "lr", e->lr);
    kw_f64(e->w, "grad_norm", e->norm);
    kw_f64(e->w, "tokens_per_s", rate);
    kw_f64(e->w, "elapsed_s", now - e->t_start);
    kw_f64(e->w, "optim_bytes", (double)e->opt->n * 2 * sizeof(float));
    /* the rest of --steps at the pace so far (kiln estimate plans it before the run) */
    double eta =
        (double)(e->o.steps - e->step) * (now - e->t_start) / (double)(e->step - e->start_step);
    if (e->o.steps) kw_f64(e->w, "eta_s", eta);
    kwriter_end(e->w);
    double total = now - e->t_start + eta;
    if (isatty(2) && e->o.steps && e->t_log == e->t_start) {
        fprintf(stderr, "%s: about %.3g s in all at this pace (%.3g s to go)\n", kiln_prog(), total,
                eta);
        e->first_total = total;
    } else if (isatty(2) && e->o.steps && e->first_total > 0) { /* how the first guess holds */
        fprintf(stderr, "%s: now about %.3g s in all: the first estimate is off by %+.0f%%\n",
                kiln_prog(), total, 100.0 * (e->first_total - total) / total);
    }
    if (isatty(2))
        fprintf(stderr, "%s: step %llu  loss %.4f  lr %.2e  %.0f tokens/s\n", kiln_prog(),
                (unsigned long long)e->step, loss, e->lr, rate);
    e->loss_sum = 0;
    memset(e->metric_sum, 0, sizeof e->metric_sum);
    e->logged_steps = 0;
    e->tokens_since_log = 0;
    e->t_log = now;
}

/* A NaN or Inf: 65, naming the step and what went bad. */
static int diverged(const kengine *e, const char *what, char *err, size_t errsz) {
    return kiln_errf(err, errsz, EX_KILN_DATA,
                     "step %llu: %s is not finite; stopping (the last ckpt record is the last "
                     "good state; lower --lr or raise --warmup)",
                     (unsigned long long)e->step + 1, what);
}

/* ---- training ------------------------------------------------------------------------------- */

int kengine_update(kengine *e, char *err, size_t errsz) {
    e->norm = params_grad_norm(e->pool, e->ps, e->n_ps);
    if (!isfinite(e->norm)) {
        int bad = params_first_nonfinite(e->ps, e->n_ps);
        char what[128];
        snprintf(what, sizeof what, "the gradient of %s", bad >= 0 ? e->ps[bad].name : "?");
        return diverged(e, what, err, errsz);
    }
    e->lr = lr_at(e->step, e->o.lr, e->o.warmup, e->o.steps);
    adamw_update_params(e->opt, e->pool, e->ps, e->n_ps, e->lr, e->norm);
    e->step++;
    return 0;
}

/* The optimizer step once --accum micro-batches have accumulated. */
static int optimizer_step(kengine *e, char *err, size_t errsz) {
    int rc = kengine_update(e, err, errsz);
    if (rc) return rc;
    e->loss_sum += e->step_loss;
    for (int i = 0; i < e->n_metrics; i++) e->metric_sum[i] += e->step_metric[i];
    e->logged_steps++;
    if (e->step % e->o.log_every == 0) emit_metrics(e);
    if (e->o.every && e->step % e->o.every == 0) emit_ckpt(e);
    return 0;
}

/* One micro-batch; every --accum of them make an optimizer step. */
static int train_record(kengine *e, const krec *r, char *err, size_t errsz) {
    if (e->micro == 0) {
        gpt_zero_grad(e->m);
        e->step_loss = 0;
        memset(e->step_metric, 0, sizeof e->step_metric);
    }
    kobj_out out = {0};
    float scale = 1.0f / (float)e->o.accum;
    int rc = e->obj->step(e->obj->self, e->m, r, scale, &out, err, errsz);
    if (rc) return rc;
    if (!isfinite(out.loss)) return diverged(e, "the loss", err, errsz);
    e->cursor = krec_u64_or(r, "cursor", e->cursor);
    e->step_loss += out.loss * scale;
    for (int i = 0; i < e->n_metrics; i++) e->step_metric[i] += out.metrics[i] * scale;
    e->tokens_since_log += out.tokens;
    if (++e->micro < e->o.accum) return 0;
    e->micro = 0;
    return optimizer_step(e, err, errsz);
}

int kengine_run(kengine *e, kreader *r, char *err, size_t errsz) {
    /* A trainer stops after its step at the first stop signal and sends its final ckpt; it
     * does not wait for its upstream's end (util.h, kiln_stop_now). */
    kiln_drain_on_stop(false);
    if (e->o.save_start) emit_ckpt(e);
    e->t_start = e->t_log = kiln_now();
    krec rec;
    int rc = 0;
    while (!rc && !kwriter_gone(e->w) && kreader_next(r, &rec)) {
        if (e->obj->accepts ? e->obj->accepts(&rec) : krec_is(&rec, e->obj->record))
            rc = train_record(e, &rec, err, errsz);
        else
            kwriter_pass(e->w, &rec);
        if (kiln_stop_signal() || (e->o.steps && e->step >= e->o.steps)) break;
    }
    if (rc || kwriter_gone(e->w)) return rc;
    if (e->logged_steps) emit_metrics(e);
    if (e->step > e->start_step && !(e->o.every && e->step % e->o.every == 0)) emit_ckpt(e);
    return 0;
}

void kengine_free(kengine *e) {
    if (!e) return;
    if (e->obj->free) e->obj->free(e->obj->self);
    if (e->own_tokenizer) {
        msgpack_unpacked_destroy(&e->tok_up);
        msgpack_sbuffer_destroy(&e->tok_buf);
    }
    adamw_free(e->opt);
    free(e->ps);
    free(e->frozen);
    lora_free(e->lora);
    gpt_free(e->m);
    kpool_free(e->pool);
    free(e);
}

void kengine_write_ckpt(kengine *e, uint64_t cursor) {
    e->cursor = cursor;
    emit_ckpt(e);
}

uint64_t kengine_resume(kengine *e, const char *path) {
    if (e->lora || e->o.new_classes_only)
        kiln_usage_error("--resume: only a full model's run resumes (not --lora or "
                         "--train-new-classes)");
    kckpt *ck = kckpt_load(path, !e->o.reset_optimizer);
    if (st_meta(ck->file, "adapter")) {
        kckpt_free(ck);
        kiln_die(EX_KILN_DATA, "--resume %s: a LoRA adapter, not a model", path);
    }
    gpt_load_ckpt(e->m, ck, e->o.reset_optimizer ? NULL : e->opt);
    e->step = e->start_step = ck->step;
    e->cursor = ck->cursor;
    kckpt_free(ck);
    return e->cursor;
}

kpool *kengine_pool(kengine *e) {
    return e->pool;
}

double kengine_lr(const kengine *e) {
    return e->lr;
}

double kengine_grad_norm(const kengine *e) {
    return e->norm;
}

gpt *kengine_model(kengine *e) {
    return e->m;
}

uint64_t kengine_step(const kengine *e) {
    return e->step;
}
