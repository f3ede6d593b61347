/* kiln-rollout — prompt records in, K completions of each out as `rollout` records with the
 * tokens and the per-token log-probabilities they were drawn with (lib/run/rollout.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/load.h"
#include "data/png.h"
#include "data/rlhf.h"
#include "data/sample.h"
#include "run/rollout.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "K completions of each prompt, with their tokens and log-probabilities",
    .usage = "kiln rollout --ckpt FILE [-K N] [--max-new N] [--prompts N] [--temperature X]\n"
             "                    [--top-k K] [--top-p P] [--seed S] [--field NAME] [--png FILE]",
    .notes =
        "A prompt is a record's `prompt` text (kiln load jsonl:), else a `sample`'s `text` (kiln\n"
        "load text: --split lines); for an image model, a record's `label` (a class name; one\n"
        "without a label draws from BOS).  Each gives K `rollout` records {id, epoch, src, k,\n"
        "prompt, completion, prompt_tokens, completion_tokens, logprobs, ended, temperature}\n"
        "(images: label and image instead of the texts).  logprobs are log_softmax(logits /\n"
        "temperature) of each drawn token over the whole vocabulary, before top-k/top-p: what a\n"
        "teacher-forced forward at that temperature gives (greedy records temperature 1's).\n"
        "A prompt longer than the context less --max-new keeps its last tokens.  Completion\n"
        "k of prompt i draws from the seed's stream i*K+k: the output does not depend on\n"
        "--prompts.  Other records pass through.  No prompt at all is bad input (65).\n"
        "An image model's rollouts can also go to a PNG grid (--png): a row per prompt, K images\n"
        "a row, in the order written.\n"
        "example:\n"
        "  kiln load jsonl:prompts.jsonl | kiln rollout --ckpt runs/moby/latest.safetensors \\\n"
        "    -K 4 --max-new 48 | kiln judge --pairs afinn > prefs.rec\n"
        "  kiln load jsonl:labels.jsonl | kiln rollout --ckpt runs/fashion/latest.safetensors \\\n"
        "    -K 8 --png grid.png > rollouts.rec\n",
};

typedef struct options {
    const char *ckpt, *adapter, *field, *png;
    int K, max_new, prompts, threads, scale;
    bool have_max_new;
    ksampler s;
    uint64_t seed;
} options;

/* Prompts waiting for their batch: the records (for id, epoch, src, text) and tokens. */
typedef struct pending {
    kstored **recs;
    int32_t **tok;
    int *len, n;
    uint64_t first; /* the first one's index among all prompts */
} pending;

typedef struct roller {
    const kmodel *km;
    const options *o;
    krollout_gen *gen;
    krollout_opts ro;
    uint8_t *allowed;
    bool text;
    uint8_t *buf; /* decoded completion text */
    kwriter *w;
    pending p;
    uint64_t prompts;                     /* seen so far */
    uint64_t rollouts, ended, new_tokens; /* written, for the summary */
    double gen_s;                         /* seconds generating */
    kimage *shots;                        /* --png: every image written, in order */
    size_t n_shots, cap_shots;
} roller;

/* ---- prompts in ------------------------------------------------------------------------- */

/* The prompt text of a record, or false when it is not a prompt. */
static bool prompt_text(const krec *r, const char *field, kstrv *v) {
    if (field) return krec_str(r, field, &v->s, &v->n);
    if (krec_str(r, KRL_PROMPT, &v->s, &v->n)) return true;
    return krec_is(r, "sample") && krec_str(r, "text", &v->s, &v->n);
}

/* An image model's first token for a record (krollout_image_prompt): its label's class token
 * (65 for an unknown label), or BOS / the first class for a record without one. */
static bool image_prompt(const roller *ro, const krec *r, int32_t *first) {
    bool is_prompt;
    char err[512];
    int rc =
        krollout_image_prompt(&ro->km->tok, r, ro->o->ckpt, &is_prompt, first, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    return is_prompt;
}

/* Queue r when it is a prompt; false to pass it through. */
static bool take(roller *ro, const krec *r) {
    int32_t *tok;
    int n;
    if (ro->text) {
        kstrv v;
        if (!prompt_text(r, ro->o->field, &v)) return false;
        char *text = xmalloc(v.n + 1);
        memcpy(text, v.s, v.n), text[v.n] = 0;
        tok = kgen_text_prompt(&ro->km->tok, text, &n);
        free(text);
    } else {
        int32_t first;
        if (!image_prompt(ro, r, &first)) return false;
        tok = xmalloc(sizeof *tok), tok[0] = first, n = 1;
    }
    pending *p = &ro->p;
    if (p->n == 0) p->first = ro->prompts;
    p->recs[p->n] = kstored_copy(r), p->tok[p->n] = tok, p->len[p->n++] = n;
    ro->prompts++;
    return true;
}

/* ---- rollouts out ----------------------------------------------------------------------- */

static void write_row(roller *ro, const krollout_batch *b, int i, int k) {
    const krec *src = &ro->p.recs[i]->rec;
    int r = i * ro->o->K + k, from = b->prompt_from[i], n = b->lens[r];
    const int32_t *tok = b->tokens + (size_t)r * b->max_new;
    krollout x = {.id = krec_u64_or(src, KRL_ID, ro->p.first + (uint64_t)i),
                  .epoch = krec_u64_or(src, KRL_EPOCH, 0),
                  .k = (uint64_t)k,
                  .prompt_tokens = {ro->p.tok[i] + from, ro->p.len[i] - from},
                  .completion_tokens = {(int32_t *)tok, n},
                  .logprobs = b->logprobs + (size_t)r * b->max_new,
                  .ended = b->ended[r],
                  .temperature = ro->o->s.temperature};
    krec_str(src, KRL_SRC, &x.src.s, &x.src.n);
    kimage im = {0};
    if (ro->text) {
        prompt_text(src, ro->o->field, &x.prompt);
        size_t nb = ktok_decode_text(&ro->km->tok, tok, (size_t)(n - b->ended[r]), ro->buf);
        x.completion = (kstrv){(const char *)ro->buf, nb};
    } else {
        const char *label = krollout_image(&ro->km->tok, ro->p.tok[i][0], tok, n, &im);
        if (label) x.label = (kstrv){label, strlen(label)};
        x.image = ktensor_make(KT_U8, im.data, 3,
                               (uint64_t[]){(uint64_t)im.h, (uint64_t)im.w, (uint64_t)im.c});
    }
    krollout_write(ro->w, &x);
    if (ro->o->png && !ro->text) { /* kept for the grid */
        if (ro->n_shots == ro->cap_shots)
            ro->cap_shots = ro->cap_shots ? 2 * ro->cap_shots : 64,
            ro->shots = xrealloc(ro->shots, xmul(ro->cap_shots, sizeof *ro->shots));
        ro->shots[ro->n_shots++] = im;
    } else {
        kimage_free(&im);
    }
}

static void flush(roller *ro) {
    pending *p = &ro->p;
    if (!p->n) return;
    krollout_batch b;
    double t = kiln_now();
    krollout_generate(ro->gen, (const int32_t *const *)p->tok, p->len, p->n, &ro->ro,
                      p->first * (uint64_t)ro->o->K, &b);
    ro->gen_s += kiln_now() - t;
    for (int r = 0; r < b.rows; r++)
        ro->rollouts++, ro->ended += b.ended[r], ro->new_tokens += (uint64_t)b.lens[r];
    for (int i = 0; i < p->n; i++) {
        for (int k = 0; k < ro->o->K && !kwriter_gone(ro->w); k++) write_row(ro, &b, i, k);
        kstored_free(p->recs[i]), free(p->tok[i]);
    }
    p->n = 0;
    krollout_batch_free(&b);
}

/* The --png grid: a row per prompt, its K rollouts left to right. */
static void write_png(roller *ro, kreader *r) {
    kimage grid = kimage_grid(ro->shots, (int)ro->n_shots, ro->o->K, ro->o->scale);
    char err[256], msg[512];
    bool ok = kpng_write_file(ro->o->png, &grid, err, sizeof err);
    kimage_free(&grid);
    for (size_t i = 0; i < ro->n_shots; i++) kimage_free(&ro->shots[i]);
    free(ro->shots);
    if (!ok) {
        snprintf(msg, sizeof msg, "--png %s: %s", ro->o->png, err);
        kiln_fail(r, ro->w, EX_KILN_IO, msg);
    }
    fprintf(stderr, "%s: %zu images, %zu prompts x K %d, in %s\n", kiln_prog(), ro->n_shots,
            ro->n_shots / (size_t)ro->o->K, ro->o->K, ro->o->png);
}

/* ---- setup ------------------------------------------------------------------------------ */

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    *o = (options){.K = 4, .max_new = 64, .prompts = 16, .scale = 2, .s = ksampler_default()};
    kopt rows[] = {
        KOPT_STRING(0, "ckpt", &o->ckpt, "FILE", "the policy: a checkpoint written by kiln ckpt",
                    .flags = KOPT_REQUIRED),
        KOPT_STRING(0, "adapter", &o->adapter, "FILE", "a LoRA adapter folded into it first"),
        KOPT_INT('K', NULL, &o->K, "N", 1, 1024, "completions per prompt (default 4)"),
        KOPT_INT(0, "max-new", &o->max_new, "N", 1, 1 << 20,
                 "tokens per completion at most (default 64, or half the context when that is "
                 "less; an image model: its pixels)",
                 .given = &o->have_max_new),
        KOPT_INT(0, "prompts", &o->prompts, "N", 1, 4096,
                 "prompts generated together (default 16): prompts x K rows per decode"),
        KOPT_STRING(0, "field", &o->field, "NAME",
                    "the prompt's text field (default: prompt, else a sample's text)"),
        KOPT_STRING(0, "png", &o->png, "FILE",
                    "an image model: also write the images drawn to FILE, a grid with a row "
                    "per prompt"),
        KOPT_INT(0, "scale", &o->scale, "N", 1, 64,
                 "pixels per image pixel in the --png grid (default 2)"),
        KOPT_THREADS(&o->threads),
        KOPT_SAMPLING(&o->s.temperature, &o->s.top_k, &o->s.top_p, &o->seed),
        KOPT_STREAM(cli),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
}

/* How long completions are and where they end: text up to --max-new at EOS; an image its
 * pixels, no end token. */
static void set_lengths(roller *ro, const options *o) {
    const ktokenizer *t = &ro->km->tok;
    int n_ctx = ro->km->m->cfg.n_ctx;
    ro->ro = krollout_opts_default();
    ro->ro.K = o->K, ro->ro.s = o->s, ro->ro.seed = o->seed, ro->ro.allowed = ro->allowed;
    if (ro->text) {
        if (o->png)
            kiln_usage_error("--png draws the images of an image model: %s is a text model",
                             o->ckpt);
        int max_new = o->have_max_new || o->max_new <= n_ctx / 2 ? o->max_new : n_ctx / 2;
        if (max_new >= n_ctx)
            kiln_usage_error("--max-new %d leaves no room for a prompt in the context %d",
                             o->max_new, n_ctx);
        ro->ro.max_new = max_new > 0 ? max_new : 1, ro->ro.eos = (int32_t)t->eos;
        return;
    }
    if (!t->height || !t->width || !t->channels)
        kiln_die(EX_KILN_DATA, "%s: the tokenizer does not say the image shape", o->ckpt);
    ro->ro.max_new = (int)(t->height * t->width * t->channels), ro->ro.eos = -1;
    if (o->have_max_new && o->max_new != ro->ro.max_new)
        kiln_usage_error("an image model draws %d tokens an image: leave --max-new out",
                         ro->ro.max_new);
    if (ro->ro.max_new > n_ctx) /* class token + pixels: n_ctx + 1, as the model trained */
        kiln_die(EX_KILN_DATA, "%s: an image of %d tokens does not fit the context %d", o->ckpt,
                 ro->ro.max_new, n_ctx);
}

static void write_hdr(kwriter *w, const krec *up, const kmodel *km, const options *o) {
    kwriter_hdr_begin(w, up, KROLLOUT, o->seed);
    kw_key(w, "tokenizer");
    ktok_pack(&km->tok, kw_packer(w));
    kw_str(w, "policy", o->ckpt);
    kw_u64(w, "K", (uint64_t)o->K);
    kwriter_end(w);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    options o;
    parse_options(argc, argv, &cli, &o);
    kpool *pool = kpool_create(o.threads);
    kmodel km;
    kmodel_from_file(&km, o.ckpt, pool);
    if (o.adapter) kmodel_apply_adapter(&km, o.adapter);
    if (!km.has_tok) kiln_die(EX_KILN_DATA, "%s: the checkpoint has no tokenizer", o.ckpt);
    roller ro = {.km = &km, .o = &o, .text = ktok_is_text(&km.tok)};
    ro.allowed = kgen_allowed(&km.tok);
    set_lengths(&ro, &o);
    ro.gen = krollout_gen_create(km.m, pool);
    ro.buf = xmalloc(xmul((size_t)ro.ro.max_new, ktok_max_bytes(&km.tok)) + 1);
    ro.p = (pending){.recs = xcalloc((size_t)o.prompts, sizeof(kstored *)),
                     .tok = xcalloc((size_t)o.prompts, sizeof(int32_t *)),
                     .len = xcalloc((size_t)o.prompts, sizeof(int))};
    kreader *r = kiln_cli_reader(&cli);
    ro.w = kiln_cli_writer(&cli);
    write_hdr(ro.w, kreader_hdr(r), &km, &o);
    krec rec;
    while (!kwriter_gone(ro.w) && kreader_next(r, &rec)) {
        if (!take(&ro, &rec))
            kwriter_pass(ro.w, &rec);
        else if (ro.p.n == o.prompts)
            flush(&ro);
        if (kiln_stop_signal()) break;
    }
    bool clean = !kiln_stop_signal() && kreader_status(r) && !strcmp(kreader_status(r), "ok");
    if (clean && !kwriter_gone(ro.w)) flush(&ro);
    for (int i = 0; i < ro.p.n; i++) kstored_free(ro.p.recs[i]), free(ro.p.tok[i]);
    if (clean && ro.prompts == 0) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "%s: no prompts (records with `prompt` text as kiln load jsonl: makes, `sample` "
                 "text, or an image model's `label`)",
                 kreader_name(r));
        kiln_fail(r, ro.w, EX_KILN_DATA, msg);
    }
    if (ro.rollouts)
        fprintf(stderr,
                "%s: %llu prompts, %llu rollouts (%llu ended at EOS), %llu new tokens in "
                "%.1f s: %.0f tokens/s\n",
                kiln_prog(), (unsigned long long)ro.prompts, (unsigned long long)ro.rollouts,
                (unsigned long long)ro.ended, (unsigned long long)ro.new_tokens, ro.gen_s,
                ro.gen_s > 0 ? (double)ro.new_tokens / ro.gen_s : 0.0);
    if (ro.n_shots) write_png(&ro, r);
    free(ro.p.recs), free(ro.p.tok), free(ro.p.len), free(ro.buf), free(ro.allowed);
    krollout_gen_free(ro.gen);
    kmodel_free(&km);
    kpool_free(pool);
    kiln_finish(r, ro.w);
}
