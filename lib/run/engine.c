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
#include "run/dist.h"
#include "run/lm.h"

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
    uint64_t step_tokens;
    /* data parallelism (lib/run/dist.h): this process is rank `rank` of `ranks` */
    int rank, ranks;
    kdist_grads *dist;
    bool stop_all; /* a step vote said every rank stops after it */
    /* --ptx: the LM objective on the file's batches, its reader (opened at the first step) */
    kobjective ptx;
    kreader *ptx_in;
    double ptx_loss_sum;
    uint64_t ptx_batches;
};

/* Gradients are summed over ranks in buckets of this many floats (16 MiB): few enough
 * messages that latency does not count, small enough to stay in cache-sized copies. */
#define KENGINE_BUCKET_FLOATS ((size_t)4 << 20)

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
    if (o->ptx && !(o->ptx_coef > 0))
        return kiln_errf(err, errsz, U, "--ptx FILE needs --ptx-coef X > 0");
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

/* A data-parallel run's ckpt holds every rank's cursor ("cursors": "C0,C1,..."); this
 * rank's, or the one cursor of a run in one process. */
static uint64_t resume_cursor(const kckpt *ck, int rank) {
    const char *list = st_meta(ck->file, "cursors");
    for (int i = 0; list && *list; i++) {
        char *end;
        unsigned long long c = strtoull(list, &end, 10);
        if (end == list) break;
        if (i == rank) return (uint64_t)c;
        list = *end == ',' ? end + 1 : end;
    }
    return ck->cursor;
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
        e->cursor = resume_cursor(ck, e->rank);
    }
    kckpt_free(ck);
    if (e->obj->setup && e->obj->setup(e->obj->self, e->m, e->tokenizer, err, sizeof err))
        kiln_die(EX_KILN_DATA, "%s", err);
}

kwriter *kengine_writer(const kiln_cli *cli) {
    kdist_init();
    if (kdist_rank() != 0) return kwriter_open("/dev/null", 1);
    bool to_stdout = !cli->out || !strcmp(cli->out, "-");
    if (kdist_size() > 1 && to_stdout && isatty(STDOUT_FILENO))
        kiln_usage_error("under mpirun, stdout is mpirun's output forwarder, not a pipe of "
                         "records: give --out FILE, a FIFO or @tcp://*:PORT (README: More than "
                         "one machine: MPI)");
    return kiln_cli_writer(cli);
}

/* Every rank starts from rank 0's weights (a fresh model's initialisation, LoRA's random
 * A matrices) after checking that all build the same trainable parameters. */
static void join_ranks(kengine *e) {
    size_t n = e->opt->n;
    uint64_t *all = xcalloc((size_t)e->ranks, sizeof *all);
    kdist_gather_u64(n, all);
    for (int r = 1; r < e->ranks; r++)
        if (all[r] != all[0])
            kiln_die(EX_KILN_DATA,
                     "rank %d trains %llu parameters, rank 0 %llu: every rank needs the same "
                     "model, options and tokenizer",
                     r, (unsigned long long)all[r], (unsigned long long)all[0]);
    free(all);
    for (int i = 0; i < e->n_ps; i++) kdist_bcast_floats(e->ps[i].p, e->ps[i].numel, 0);
    /* $KILN_ALLREDUCE_FLOATS: another bucket size (tests split tensors across buckets) */
    const char *env = getenv("KILN_ALLREDUCE_FLOATS");
    uint64_t bucket = KENGINE_BUCKET_FLOATS;
    if (env && (!parse_u64(env, &bucket) || bucket == 0))
        kiln_die(EX_KILN_USAGE, "KILN_ALLREDUCE_FLOATS wants a whole number > 0, not '%s'", env);
    e->dist = kdist_grads_create((size_t)bucket);
    if (e->rank == 0)
        kiln_warn("data parallel over %d ranks (%s): global batch = %d x --accum %llu x the "
                  "batch of each rank's stream",
                  e->ranks, kdist_backend(), e->ranks, (unsigned long long)e->o.accum);
}

kengine *kengine_open(const kengine_opts *o, kobjective *obj, const krec *hdr, kwriter *w) {
    kengine *e = xcalloc(1, sizeof *e);
    kdist_init();
    e->rank = kdist_rank();
    e->ranks = kdist_size();
    e->o = *o;
    e->obj = obj;
    e->w = w;
    while (obj->metric_names[e->n_metrics]) e->n_metrics++;
    if (e->n_metrics > KOBJ_MAX_METRICS) kiln_die(EX_KILN_SOFTWARE, "too many objective metrics");
    e->tokenizer = krec_get(hdr, "tokenizer");
    if (o->ptx) e->ptx = klm_objective();
    build_model(e, hdr);
    if (e->ranks > 1) join_ranks(e);
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

/* FNV-1a over the trained tensors' bytes: equal on every rank while the ranks agree. */
static uint64_t params_checksum(const kparam *ps, int n) {
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < n; i++) {
        const unsigned char *b = (const unsigned char *)ps[i].p;
        for (size_t k = 0; k < ps[i].numel * sizeof(float); k++) h = (h ^ b[k]) * 1099511628211ull;
    }
    return h;
}

/* The ranks must hold the same weights: they took the same steps on the same all-reduced
 * gradients.  Checked at each ckpt (collective), so a difference is never saved silently. */
static void check_ranks_agree(kengine *e) {
    uint64_t *sums = xcalloc((size_t)e->ranks, sizeof *sums);
    kdist_gather_u64(params_checksum(e->ps, e->n_ps), sums);
    for (int r = 1; r < e->ranks; r++)
        if (sums[r] != sums[0])
            kiln_die(EX_KILN_SOFTWARE,
                     "step %llu: rank %d's weights differ from rank 0's (the all-reduce gave "
                     "ranks different sums); no ckpt written",
                     (unsigned long long)e->step, r);
    free(sums);
}

static void emit_ckpt(kengine *e) {
    if (e->dist) check_ranks_agree(e);
    uint64_t *cursors = xcalloc((size_t)e->ranks, sizeof *cursors);
    kdist_gather_u64(e->cursor, cursors); /* (collective: every rank comes here) */
    if (e->rank != 0) {
        free(cursors);
        return;
    }
    /* `cursor` is the furthest: where ranks that share one stream (kiln batch --shard)
     * all resume; `cursors` where each rank's own stream (kiln load --shard) resumes. */
    uint64_t furthest = 0;
    for (int r = 0; r < e->ranks; r++) furthest = cursors[r] > furthest ? cursors[r] : furthest;
    kckpt_state s = {.m = e->m,
                     .tokenizer = e->tokenizer,
                     .step = e->step,
                     .cursor = furthest,
                     .seed = e->seed,
                     .ps = e->ps,
                     .n_ps = e->n_ps,
                     .opt = e->opt,
                     .lr = e->lr,
                     .lora = e->lora,
                     .rows = e->o.new_classes_only ? &e->rows : NULL,
                     .first_row = e->m->cfg.vocab - e->o.n_add,
                     .base_hash = e->base_hash,
                     .cursors = e->ranks > 1 ? cursors : NULL,
                     .n_cursors = e->ranks};
    kckpt_record_write(e->w, &s);
    free(cursors);
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
    double ptx = kengine_take_ptx_loss(e);
    if (!isnan(ptx)) kw_f64(e->w, "ptx_loss", ptx);
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
    bool tty = isatty(2) && e->rank == 0;
    if (tty && e->o.steps && e->t_log == e->t_start) {
        fprintf(stderr, "%s: about %.3g s in all at this pace (%.3g s to go)\n", kiln_prog(), total,
                eta);
        e->first_total = total;
    } else if (tty && e->o.steps && e->first_total > 0) { /* how the first guess holds */
        fprintf(stderr, "%s: now about %.3g s in all: the first estimate is off by %+.0f%%\n",
                kiln_prog(), total, 100.0 * (e->first_total - total) / total);
    }
    if (tty)
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

/* --ptx: the next `batch` record of the file, the file read again from its start at its
 * end; a run resumed at step S starts at the file's S-th batch (mod its length), where
 * the straight run was. */
static int ptx_next(kengine *e, krec *rec, char *err, size_t errsz) {
    uint64_t skip = 0, seen = 0;
    if (!e->ptx_in) {
        e->ptx_in = kreader_open(e->o.ptx, 1);
        skip = e->step;
    }
    for (;;) {
        if (!kreader_next(e->ptx_in, rec)) {
            if (!seen)
                return kiln_errf(err, errsz, EX_KILN_DATA, "--ptx %s: no batch records", e->o.ptx);
            kreader_close(e->ptx_in);
            e->ptx_in = kreader_open(e->o.ptx, 1);
            skip %= seen, seen = 0;
            continue;
        }
        if (!krec_is(rec, "batch")) continue;
        seen++;
        if (skip == 0) return 0;
        skip--;
    }
}

/* ptx_coef x the LM loss of one pretraining batch, into the gradients. */
static int ptx_step(kengine *e, char *err, size_t errsz) {
    krec rec;
    int rc = ptx_next(e, &rec, err, errsz);
    if (rc) return rc;
    kobj_out out = {0};
    char why[512];
    rc = e->ptx.step(e->ptx.self, e->m, &rec, (float)(e->o.ptx_coef / e->ranks), &out, why,
                     sizeof why);
    if (rc) return kiln_errf(err, errsz, rc, "--ptx %s: %s", e->o.ptx, why);
    if (!isfinite(out.loss)) return diverged(e, "the --ptx loss", err, errsz);
    e->ptx_loss_sum += out.loss;
    e->ptx_batches++;
    e->step_tokens += out.tokens;
    return 0;
}

int kengine_update(kengine *e, char *err, size_t errsz) {
    if (e->o.ptx) {
        int rc = ptx_step(e, err, errsz);
        if (rc) return rc;
    }
    if (e->dist) kdist_grads_sum(e->dist, e->ps, e->n_ps); /* the ranks' mean gradient */
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
    e->tokens_since_log += e->step_tokens;
    e->logged_steps++;
    if (e->step % e->o.log_every == 0) emit_metrics(e);
    if (e->o.every && e->step % e->o.every == 0) emit_ckpt(e);
    return 0;
}

/* The step vote of a data-parallel run: at the end of each of its steps (or of its input,
 * or on a failure) every rank says whether it has a full step, wants to stop (a signal;
 * rank 0's downstream gone) or failed, and adds its loss, metrics and tokens, so all ranks
 * agree on whether to take the step and whether to go on.  One all-reduce of a few doubles
 * per step; every rank votes once per step and never after a vote that ends the run, so
 * the collective calls match.  0, or 65 when a rank failed (its own message on its
 * stderr, this one's in err). */
enum { VOTE_READY, VOTE_STOP, VOTE_FAILED, VOTE_TOKENS, VOTE_LOSS, VOTE_METRICS };

static int vote(kengine *e, bool ready, bool failed, char *err, size_t errsz) {
    double v[VOTE_METRICS + KOBJ_MAX_METRICS] = {0};
    v[VOTE_READY] = ready;
    v[VOTE_STOP] = kiln_stop_signal() || kwriter_gone(e->w);
    v[VOTE_FAILED] = failed ? e->rank + 1 : 0;
    v[VOTE_TOKENS] = (double)e->step_tokens;
    v[VOTE_LOSS] = e->step_loss;
    for (int i = 0; i < e->n_metrics; i++) v[VOTE_METRICS + i] = e->step_metric[i];
    kdist_sum_doubles(v, VOTE_METRICS + e->n_metrics);
    e->step_tokens = (uint64_t)v[VOTE_TOKENS];
    e->step_loss = v[VOTE_LOSS];
    for (int i = 0; i < e->n_metrics; i++) e->step_metric[i] = v[VOTE_METRICS + i];
    e->stop_all = v[VOTE_STOP] > 0 || v[VOTE_READY] < e->ranks || v[VOTE_FAILED] > 0;
    if (v[VOTE_FAILED] > 0 && !failed)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "step %llu: another rank failed (its message is above); stopping",
                         (unsigned long long)e->step + 1);
    if (failed || v[VOTE_READY] < e->ranks) return 0; /* (an input ended: no step) */
    return optimizer_step(e, err, errsz);
}

/* One micro-batch; every --accum of them (on every rank) make an optimizer step. */
static int train_record(kengine *e, const krec *r, char *err, size_t errsz) {
    if (e->micro == 0) {
        gpt_zero_grad(e->m);
        e->step_loss = 0;
        e->step_tokens = 0;
        memset(e->step_metric, 0, sizeof e->step_metric);
    }
    kobj_out out = {0};
    /* each rank's share of the global mean: the all-reduce sums the ranks' gradients */
    float scale = 1.0f / (float)(e->o.accum * (uint64_t)e->ranks);
    int rc = e->obj->step(e->obj->self, e->m, r, scale, &out, err, errsz);
    if (!rc && !isfinite(out.loss)) rc = diverged(e, "the loss", err, errsz);
    if (rc && e->dist) { /* "rank R: record N: why", and the others learn of it */
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        snprintf(err, errsz, "rank %d: %s", e->rank, why);
        vote(e, false, true, why, sizeof why);
    }
    if (rc) return rc;
    e->cursor = krec_u64_or(r, "cursor", e->cursor);
    e->step_loss += out.loss * scale;
    for (int i = 0; i < e->n_metrics; i++) e->step_metric[i] += out.metrics[i] * scale;
    e->step_tokens += out.tokens;
    if (++e->micro < e->o.accum) return 0;
    e->micro = 0;
    return e->dist ? vote(e, true, false, err, errsz) : optimizer_step(e, err, errsz);
}

/* Whether the loop ends after this record: in one process at a stop signal; with ranks
 * only where a step vote said so, so that every rank leaves after the same step. */
static bool run_ends(const kengine *e) {
    if (e->o.steps && e->step >= e->o.steps) return true;
    return e->dist ? e->stop_all : kiln_stop_signal();
}

int kengine_run(kengine *e, kreader *r, char *err, size_t errsz) {
    /* A trainer stops after its step at the first stop signal and sends its final ckpt; it
     * does not wait for its upstream's end (util.h, kiln_stop_now). */
    kiln_drain_on_stop(false);
    if (e->o.save_start) emit_ckpt(e);
    e->t_start = e->t_log = kiln_now();
    krec rec;
    int rc = 0;
    bool more = true; /* (a data-parallel rank 0 votes its downstream's end instead) */
    while (!rc && (e->dist || !kwriter_gone(e->w)) && (more = kreader_next(r, &rec))) {
        if (e->obj->accepts ? e->obj->accepts(&rec) : krec_is(&rec, e->obj->record))
            rc = train_record(e, &rec, err, errsz);
        else
            kwriter_pass(e->w, &rec);
        if (run_ends(e)) break;
    }
    /* This rank's input ended first: the others learn it at their next vote. */
    if (e->dist && !rc && !more && !e->stop_all) rc = vote(e, false, false, err, errsz);
    if (e->dist && e->rank == 0 && e->dist->seconds > 0 && e->step > e->start_step)
        kiln_warn("all-reduce: %.3g s of %.3g s training (%.1f%%), %.3g MB a step",
                  e->dist->seconds, kiln_now() - e->t_start,
                  100 * e->dist->seconds / (kiln_now() - e->t_start),
                  (double)e->dist->bytes / (double)(e->step - e->start_step) / 1e6);
    /* (ranks all write their final ckpt or none: its cursor gather is collective) */
    if (rc || (!e->dist && kwriter_gone(e->w))) return rc;
    if (e->logged_steps) emit_metrics(e);
    if (e->step > e->start_step && !(e->o.every && e->step % e->o.every == 0)) emit_ckpt(e);
    return 0;
}

void kengine_free(kengine *e) {
    if (!e) return;
    if (e->obj->free) e->obj->free(e->obj->self);
    if (e->ptx.free) e->ptx.free(e->ptx.self);
    if (e->ptx_in) kreader_close(e->ptx_in);
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
    kdist_grads_free(e->dist);
    free(e);
    kdist_finalize(); /* (after the last collective: the final ckpt's cursor gather) */
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

double kengine_take_ptx_loss(kengine *e) {
    double mean = e->ptx_batches ? e->ptx_loss_sum / (double)e->ptx_batches : NAN;
    e->ptx_loss_sum = 0, e->ptx_batches = 0;
    return mean;
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
