/* kiln-sample — a trained checkpoint in, generated text or images out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/options.h"
#include "model/generate.h"
#include "ckpt/load.h"
#include "data/png.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "generate text or images from a checkpoint",
    .usage = "kiln sample --ckpt FILE [--prompt TEXT] [-n N] [--temperature X] [--top-k K]\n"
             "                   [--top-p P] [--seed S] [--class NAME] [--png FILE] [--records]",
    .notes = "Text streams to stdout token by token as it is generated.\n"
             "example:\n"
             "  kiln sample --ckpt runs/moby/latest.safetensors --prompt 'Call me' -n 300 --top-k "
             "40\n"
             "  kiln sample --ckpt runs/fashion/latest.safetensors -n 8 --png grid.png\n",
};

typedef struct options {
    const char *ckpt, *adapter, *prompt, *cls, *png, *tokens;
    int n, count, scale, threads;
    bool have_n, records, logits, ignore_eos;
    ksampler s;
    uint64_t seed;
} options;

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    *o = (options){.count = 1, .scale = 2, .s = ksampler_default()};
    kopt rows[] = {
        KOPT_STRING(0, "ckpt", &o->ckpt, "FILE", "a safetensors checkpoint written by kiln ckpt",
                    .flags = KOPT_REQUIRED),
        KOPT_STRING(0, "adapter", &o->adapter, "FILE",
                    "a LoRA adapter checkpoint trained on --ckpt (kiln train --lora)"),
        KOPT_INT('n', NULL, &o->n, "N", 0, 1 << 20,
                 "text: tokens to generate (default 200; stops early at EOS);\n"
                 "images: images to draw (default 16; per class without --class)",
                 .given = &o->have_n),
        KOPT_THREADS(&o->threads),
        KOPT_GROUP("text"),
        KOPT_STRING(0, "prompt", &o->prompt, "TEXT",
                    "what the sample continues (default: a new document)"),
        KOPT_INT(0, "count", &o->count, "N", 1, 4096,
                 "samples (default 1; more than 1 needs --records)"),
        KOPT_BOOL(0, "ignore-eos", &o->ignore_eos, "never end at EOS, always give -n tokens"),
        KOPT_GROUP("images"),
        KOPT_STRING(0, "class", &o->cls, "NAME",
                    "draw this class (default: every class, a grid row each)"),
        KOPT_STRING(0, "png", &o->png, "FILE", "write the grid of samples to FILE"),
        KOPT_INT(0, "scale", &o->scale, "N", 1, 64,
                 "pixels per image pixel in the grid (default 2)"),
        KOPT_SAMPLING(&o->s.temperature, &o->s.top_k, &o->s.top_p, &o->seed),
        KOPT_GROUP("output"),
        KOPT_BOOL(0, "records", &o->records,
                  "write `sample` records (text or image, label) instead"),
        KOPT_BOOL(0, "logits", &o->logits,
                  "print the logits for the prompt's tokens (or --tokens), one line per "
                  "position: V numbers (for comparing with other frameworks)"),
        KOPT_STRING(0, "tokens", &o->tokens, "LIST", "token ids for --logits, comma separated"),
        KOPT_STREAM_OUT(cli),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
}

/* ---- --logits --------------------------------------------------------------------------- */

static int32_t *parse_tokens(const char *list, int *n) {
    int32_t *tok = xmalloc(xmul(strlen(list) / 2 + 1, sizeof(int32_t)));
    char *copy = xstrdup(list), *save = NULL;
    *n = 0;
    for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        int64_t v;
        if (!parse_i64(p, &v) || v < 0 || v > INT32_MAX)
            kiln_usage_error("--tokens: bad id '%s'", p);
        tok[(*n)++] = (int32_t)v;
    }
    free(copy);
    if (!*n) kiln_usage_error("--tokens: no ids");
    return tok;
}

/* The training forward's logits for one sequence, a line per position. */
static void print_logits(const kmodel *km, const options *o) {
    int n;
    int32_t *tok =
        o->tokens ? parse_tokens(o->tokens, &n) : kgen_text_prompt(&km->tok, o->prompt, &n);
    if (n > km->m->cfg.n_ctx)
        kiln_usage_error("%d tokens exceed the context %d", n, km->m->cfg.n_ctx);
    for (int i = 0; i < n; i++)
        if (tok[i] >= km->m->cfg.vocab)
            kiln_usage_error("token %d is outside the vocabulary", tok[i]);
    gpt_forward(km->m, tok, NULL, NULL, 1, n);
    const float *l = gpt_logits(km->m);
    int V = km->m->cfg.vocab;
    for (int t = 0; t < n; t++) {
        for (int v = 0; v < V; v++) printf(v ? " %.9g" : "%.9g", l[(size_t)t * V + v]);
        putchar('\n');
    }
    free(tok);
}

/* ---- text ------------------------------------------------------------------------------- */

typedef struct streamer {
    const ktokenizer *tok;
} streamer;

static bool put_token(void *ctx, int row, int32_t token) {
    (void)row;
    const streamer *s = ctx;
    uint8_t b[KBPE_MAX_TOKEN]; /* a token's bytes (lib/data/bpe.h) */
    size_t n = ktok_max_bytes(s->tok) <= sizeof b ? ktok_decode_text(s->tok, &token, 1, b) : 0;
    if (n) fwrite(b, 1, n, stdout);
    fflush(stdout);
    return !kiln_stop_signal() && !ferror(stdout);
}

static void stream_text(const kmodel *km, const options *o, kpool *pool) {
    int np, n = o->have_n ? o->n : 200;
    int32_t *prompt = kgen_text_prompt(&km->tok, o->prompt, &np);
    int32_t *out = xmalloc(xmul((size_t)n + 1, sizeof(int32_t)));
    int len;
    uint8_t *allowed = kgen_allowed(&km->tok);
    if (o->ignore_eos) allowed[km->tok.eos] = 0; /* go on past the end of a document */
    if (o->prompt) fputs(o->prompt, stdout);
    streamer st = {&km->tok};
    kgen *g = kgen_create(km->m, 1, pool);
    if (n)
        kgen_run(g, prompt, np, n, &o->s, allowed, (int32_t)km->tok.eos, o->seed, put_token, &st,
                 out, &len);
    putchar('\n');
    if (fflush(stdout) || ferror(stdout)) kiln_stdout_failed();
    kgen_free(g);
    free(prompt), free(out), free(allowed);
}

/* ---- images ----------------------------------------------------------------------------- */

static void draw_images(const kmodel *km, const options *o, kpool *pool) {
    const ktokenizer *t = &km->tok;
    int64_t cls = -1;
    if (o->cls) {
        cls = ktok_class_token(t, o->cls, strlen(o->cls));
        if (cls < 0)
            kiln_usage_error("--class '%s' is not one of the checkpoint's classes", o->cls);
    }
    int per = o->have_n ? o->n : 16, groups = cls < 0 && t->nclasses ? (int)t->nclasses : 1;
    int R = per * groups;
    if (R < 1 || R > 4096) kiln_usage_error("%d images: -n must make 1..4096", R);
    int32_t *first = xmalloc(xmul((size_t)R, sizeof(int32_t)));
    for (int r = 0; r < R; r++) first[r] = kgen_first_token(t, cls, groups > 1 ? r / per : 0);
    kimage *im = xcalloc((size_t)R, sizeof *im);
    kgen_images(km->m, t, pool, first, R, &o->s, o->seed, im);
    int cols = groups > 1 ? per : 1;
    while (groups == 1 && cols * cols < R) cols++;
    kimage grid = kimage_grid(im, R, cols, o->scale);
    char err[256];
    if (!kpng_write_file(o->png, &grid, err, sizeof err))
        kiln_die(EX_KILN_IO, "%s: %s", o->png, err);
    kimage_free(&grid);
    fprintf(stderr, "%s: %d images (%s) in %s\n", kiln_prog(), R,
            groups > 1 ? "a row per class"
            : o->cls   ? o->cls
                       : "unconditional",
            o->png);
    for (int r = 0; r < R; r++) kimage_free(&im[r]);
    free(im), free(first);
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
    if (!km.has_tok && !o.tokens)
        kiln_die(EX_KILN_DATA, "%s: the checkpoint has no tokenizer to encode or decode with",
                 o.ckpt);
    bool text = km.has_tok && ktok_is_text(&km.tok);
    if (o.logits) {
        print_logits(&km, &o);
    } else if (o.records) {
        kwriter *w = kiln_cli_writer(&cli);
        kwriter_hdr_begin(w, NULL, "sample", o.seed);
        kw_key(w, "tokenizer");
        ktok_pack(&km.tok, kw_packer(w));
        kwriter_end(w);
        int64_t cls = o.cls ? ktok_class_token(&km.tok, o.cls, strlen(o.cls)) : -1;
        if (o.cls && cls < 0)
            kiln_usage_error("--class '%s' is not one of the checkpoint's classes", o.cls);
        kgen_request q = {.n = text ? o.count : (o.have_n ? o.n : 16),
                          .prompt = o.prompt,
                          .cls = cls,
                          .text_len = o.have_n ? o.n : 200,
                          .s = o.s,
                          .seed = o.seed,
                          .step = km.step,
                          .src = o.ckpt};
        kgen_write_samples(w, km.m, &km.tok, pool, &q);
        kmodel_free(&km);
        kpool_free(pool);
        kiln_finish(NULL, w);
    } else if (text) {
        if (o.count != 1) kiln_usage_error("--count > 1 needs --records");
        stream_text(&km, &o, pool);
    } else {
        if (!o.png) kiln_usage_error("an image model: give --png FILE (or --records)");
        draw_images(&km, &o, pool);
    }
    kmodel_free(&km);
    kpool_free(pool);
    return kiln_stop_signal() ? kiln_stop_status(kiln_stop_signal()) : 0;
}
