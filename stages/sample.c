/* kiln-sample — a trained checkpoint in, generated text or images out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream/cli.h"
#include "model/generate.h"
#include "ckpt/gptload.h"
#include "data/png.h"
#include "core/util.h"

static const char HELP[] =
    "kiln-sample — generate text or images from a checkpoint\n"
    "usage: kiln sample --ckpt FILE [--prompt TEXT] [-n N] [--temperature X] [--top-k K]\n"
    "                   [--top-p P] [--seed S] [--class NAME] [--png FILE] [--records]\n"
    "  --ckpt FILE       a safetensors checkpoint written by kiln ckpt\n"
    "  --adapter FILE    a LoRA adapter checkpoint trained on --ckpt (kiln train --lora)\n"
    "  --prompt TEXT     text: what the sample continues (default: a new document)\n"
    "  -n N              text: tokens to generate (default 200; stops early at EOS);\n"
    "                    images: images to draw (default 16; per class without --class)\n"
    "  --count N         text: samples (default 1; more than 1 needs --records)\n"
    "  --ignore-eos      text: never end at EOS, always give -n tokens\n"
    "  --temperature X   0 = always the most likely token (default 1)\n"
    "  --top-k K         draw among the K most likely tokens (default 0: all)\n"
    "  --top-p P         draw among the most likely tokens whose probability sums to P\n"
    "                    (default 1: all)\n"
    "  --seed S          the same seed gives the same sample (default 0)\n"
    "  --class NAME      images: draw this class (default: every class, a grid row each)\n"
    "  --png FILE        images: write the grid of samples to FILE\n"
    "  --scale N         images: pixels per image pixel in the grid (default 2)\n"
    "  --records         write `sample` records (text or image, label) instead\n"
    "  --logits          print the logits for the prompt's tokens (or --tokens), one line\n"
    "                    per position: V numbers (for comparing with other frameworks)\n"
    "  --tokens LIST     token ids for --logits, comma separated\n"
    "  --threads N       threads (default $KILN_THREADS or all CPUs)\n"
    "Text streams to stdout token by token as it is generated.\n" KILN_CLI_HELP "example:\n"
    "  kiln sample --ckpt runs/moby/latest.safetensors --prompt 'Call me' -n 300 --top-k 40\n"
    "  kiln sample --ckpt runs/fashion/latest.safetensors -n 8 --png grid.png\n";

typedef struct options {
    const char *ckpt, *adapter, *prompt, *cls, *png, *tokens;
    int n, count, scale, threads;
    bool have_n, records, logits, ignore_eos;
    ksampler s;
    uint64_t seed;
} options;

static void parse_options(int argc, char **argv, kiln_cli *cli, options *o) {
    enum {
        O_CKPT = 1,
        O_PROMPT,
        O_COUNT,
        O_TEMP,
        O_TOPK,
        O_TOPP,
        O_SEED,
        O_CLASS,
        O_PNG,
        O_SCALE,
        O_RECORDS,
        O_LOGITS,
        O_TOKENS,
        O_THREADS,
        O_ADAPTER,
        O_IGNORE_EOS
    };
    static const struct option opts[] = {{"ckpt", 1, 0, O_CKPT},
                                         {"adapter", 1, 0, O_ADAPTER},
                                         {"ignore-eos", 0, 0, O_IGNORE_EOS},
                                         {"prompt", 1, 0, O_PROMPT},
                                         {"count", 1, 0, O_COUNT},
                                         {"temperature", 1, 0, O_TEMP},
                                         {"top-k", 1, 0, O_TOPK},
                                         {"top-p", 1, 0, O_TOPP},
                                         {"seed", 1, 0, O_SEED},
                                         {"class", 1, 0, O_CLASS},
                                         {"png", 1, 0, O_PNG},
                                         {"scale", 1, 0, O_SCALE},
                                         {"records", 0, 0, O_RECORDS},
                                         {"logits", 0, 0, O_LOGITS},
                                         {"tokens", 1, 0, O_TOKENS},
                                         {"threads", 1, 0, O_THREADS},
                                         KILN_CLI_LONGOPTS,
                                         {0, 0, 0, 0}};
    *o = (options){.count = 1, .scale = 2, .s = ksampler_default()};
    int c;
    while ((c = getopt_long(argc, argv, "hn:", opts, NULL)) != -1) {
        const char *name = argv[optind - 1];
        switch (c) {
        case O_CKPT:
            o->ckpt = optarg;
            break;
        case O_IGNORE_EOS:
            o->ignore_eos = true;
            break;
        case O_ADAPTER:
            o->adapter = optarg;
            break;
        case O_PROMPT:
            o->prompt = optarg;
            break;
        case 'n':
            o->n = (int)opt_u64("-n", optarg), o->have_n = true;
            break;
        case O_COUNT:
            o->count = (int)opt_u64(name, optarg);
            break;
        case O_TEMP:
            o->s.temperature = opt_f64(name, optarg);
            break;
        case O_TOPK:
            o->s.top_k = (int)opt_u64(name, optarg);
            break;
        case O_TOPP:
            o->s.top_p = opt_f64(name, optarg);
            break;
        case O_SEED:
            o->seed = opt_u64(name, optarg);
            break;
        case O_CLASS:
            o->cls = optarg;
            break;
        case O_PNG:
            o->png = optarg;
            break;
        case O_SCALE:
            o->scale = (int)opt_u64(name, optarg);
            break;
        case O_RECORDS:
            o->records = true;
            break;
        case O_LOGITS:
            o->logits = true;
            break;
        case O_TOKENS:
            o->tokens = optarg;
            break;
        case O_THREADS:
            o->threads = (int)opt_u64(name, optarg);
            break;
        default:
            if (!kiln_cli_option(cli, c, optarg)) kiln_usage_error("unknown option");
        }
    }
    if (optind < argc) kiln_usage_error("unexpected argument '%s'", argv[optind]);
    if (o->adapter && !o->ckpt) kiln_usage_error("--adapter needs --ckpt BASE");
    if (!o->ckpt) kiln_usage_error("--ckpt FILE is required");
    if (o->n < 0 || o->n > (1 << 20) || o->count < 1 || o->count > 4096)
        kiln_usage_error("-n must be 0..1048576 and --count 1..4096");
    if (!(o->s.temperature >= 0) || !(o->s.top_p > 0 && o->s.top_p <= 1))
        kiln_usage_error("--temperature must be >= 0 and --top-p in (0, 1]");
    if (o->scale < 1 || o->scale > 64) kiln_usage_error("--scale must be 1..64");
    if (o->threads < 0 || o->threads > 1024) kiln_usage_error("--threads must be 0..1024");
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
    uint8_t b[4];
    size_t n = ktok_decode_text(s->tok, &token, 1, b);
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

/* Images in a grid of `cols` columns, each scaled up, 2 pixels of white between. */
static void write_grid(const char *path, const kimage *im, int n, int cols, int scale) {
    int gap = 2, h = im[0].h * scale, w = im[0].w * scale, c = im[0].c;
    int rows = (n + cols - 1) / cols;
    kimage grid = kimage_new(rows * (h + gap) + gap, cols * (w + gap) + gap, c);
    memset(grid.data, 255, kimage_bytes(&grid));
    for (int i = 0; i < n; i++) {
        int y0 = gap + (i / cols) * (h + gap), x0 = gap + (i % cols) * (w + gap);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                memcpy(grid.data + ((size_t)(y0 + y) * grid.w + (size_t)(x0 + x)) * c,
                       im[i].data + ((size_t)(y / scale) * im[i].w + (size_t)(x / scale)) * c,
                       (size_t)c);
    }
    char err[256];
    if (!kpng_write_file(path, &grid, err, sizeof err)) kiln_die(EX_KILN_IO, "%s: %s", path, err);
    kimage_free(&grid);
}

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
    write_grid(o->png, im, R, cols, o->scale);
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
    bool text = km.has_tok && km.tok.kind == KTOK_BYTES;
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
