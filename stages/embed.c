/* kiln-embed — token records in, embedding records out: each text or image as the model's
 * pooled, L2-normalised final state, many rows a forward. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/load.h"
#include "data/sample.h"
#include "model/embed.h"
#include "model/weights.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "embed texts or images with a model: pooled, normalised vectors",
    .usage = "kiln embed --ckpt FILE [--adapter FILE] [--pool mean|last] [-B ROWS]",
    .notes =
        "Each tokens record becomes an embedding record: its fields (id, label, text, src, ...)\n"
        "kept, its tokens replaced by `embedding`, F32 [C], of length 1.  Rows longer than the\n"
        "model's context are cut to it.  The hdr says which model (`model_hash`, the weights\n"
        "hash kiln search checks an index against), the pooling and the width (`dim`).  The\n"
        "stream's tokenizer must be the checkpoint's.  Other records pass through.\n"
        "example:\n"
        "  kiln load text:notes/ --split paragraphs | kiln tokenize --bytes --keep \\\n"
        "    | kiln embed --ckpt runs/a/ckpt/best.safetensors | kiln index -o notes.index\n",
};

typedef struct options {
    const char *ckpt, *adapter, *pool, *field;
    int rows, threads;
} options;

/* The batch's records, kept until their vectors are known. */
typedef struct pending {
    kstored **recs;
    int n;
} pending;

static void flush(kwriter *w, kembedder *e, pending *p, const char *field, int C) {
    int rows;
    const float *v = kembedder_run(e, &rows);
    const char *skip[] = {field, "mask", "embedding", NULL};
    for (int i = 0; i < rows; i++) {
        ktensor t = ktensor_1d(KT_F32, v + (size_t)i * C, (size_t)C);
        kwriter_begin(w, "embedding");
        kw_copy_fields(w, &p->recs[i]->rec, skip);
        kw_tensor(w, "embedding", &t);
        kwriter_end(w);
        kstored_free(p->recs[i]);
    }
    p->n = 0;
}

/* The record's token row; 65 for a field that is not a non-empty I32 vector. */
static bool take(kembedder *e, pending *p, const krec *r, const char *field, const gpt *m) {
    ktensor t;
    if (!krec_get(r, field)) return false;
    if (!krec_tensor(r, field, &t) || t.dtype != KT_I32 || t.ndim != 1 || t.shape[0] == 0)
        kiln_die(EX_KILN_DATA, "record %llu: %s is not a non-empty I32 [n] token row",
                 (unsigned long long)r->seq, field);
    size_t n = (size_t)t.shape[0];
    int32_t *tok = xmalloc(xmul(n, sizeof(int32_t)));
    ktensor_copy(&t, tok);
    for (size_t i = 0; i < n; i++)
        if (tok[i] < 0 || tok[i] >= m->cfg.vocab)
            kiln_die(EX_KILN_DATA, "record %llu: token %d is outside the vocabulary (%d)",
                     (unsigned long long)r->seq, tok[i], m->cfg.vocab);
    kembedder_add(e, tok, n);
    free(tok);
    p->recs[p->n++] = kstored_copy(r);
    return true;
}

static void check_tokenizer(const kmodel *km, const krec *hdr, const char *ckpt) {
    const msgpack_object *o = krec_get(hdr, "tokenizer");
    ktokenizer tok;
    char err[256], a[128], b[128];
    if (!o) kiln_die(EX_KILN_DATA, "hdr has no tokenizer (run kiln tokenize)");
    if (!ktok_from_obj(o, &tok, err, sizeof err)) kiln_die(EX_KILN_DATA, "hdr: %s", err);
    if (km->has_tok && !ktok_same(&km->tok, &tok)) {
        ktok_describe(&tok, a, sizeof a), ktok_describe(&km->tok, b, sizeof b);
        kiln_die(EX_KILN_DATA, "%s: the model's tokenizer (%s) is not the stream's (%s)", ckpt, b,
                 a);
    }
    ktok_free(&tok);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    options o = {.pool = "mean", .field = "tokens", .rows = 64};
    kopt rows[] = {
        KOPT_STRING(0, "ckpt", &o.ckpt, "FILE", "the model (a checkpoint file)",
                    .flags = KOPT_REQUIRED),
        KOPT_STRING(0, "adapter", &o.adapter, "FILE", "a LoRA adapter folded into it first"),
        KOPT_CHOICE(
            0, "pool", &o.pool, "HOW", gpt_pool_names,
            "mean over the row's tokens (default), its last token, or weightedmean: the mean "
            "weighted by position (1, 2, 3, ...; SGPT)"),
        KOPT_STRING(0, "field", &o.field, "NAME", "the token field to embed (default tokens)"),
        KOPT_INT('B', "rows", &o.rows, "N", 1, 4096, "rows per forward (default 64)"),
        KOPT_THREADS(&o.threads),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    kpool *pool = kpool_create(o.threads);
    kmodel km;
    kmodel_from_file(&km, o.ckpt, pool);
    if (o.adapter) kmodel_apply_adapter(&km, o.adapter);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    check_tokenizer(&km, hdr, o.ckpt);
    char hash[32];
    gpt_weights_hash(km.m, hash, sizeof hash);
    int C = km.m->cfg.n_embd;
    kwriter_hdr_begin(w, hdr, "embedding", krec_u64_or(hdr, "seed", 0));
    kw_str(w, "model_hash", hash);
    kw_str(w, "pool", o.pool);
    kw_u64(w, "dim", (uint64_t)C);
    kwriter_end(w);

    kembedder *e = kembedder_new(km.m, gpt_pool_parse(o.pool), o.rows);
    pending p = {xcalloc((size_t)o.rows, sizeof(kstored *)), 0};
    krec rec;
    while (!kwriter_gone(w) && kreader_next(r, &rec)) {
        if (!krec_is(&rec, "tokens") || !take(e, &p, &rec, o.field, km.m))
            kwriter_pass(w, &rec);
        else if (kembedder_full(e))
            flush(w, e, &p, o.field, C);
        if (kiln_stop_signal()) break;
    }
    if (!kwriter_gone(w)) flush(w, e, &p, o.field, C);
    free(p.recs);
    kembedder_free(e);
    kmodel_free(&km);
    kpool_free(pool);
    kiln_finish(r, w);
}
