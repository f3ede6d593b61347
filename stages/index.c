/* kiln-index — embedding records in, one index file out (lib/ckpt/index.h): the vectors,
 * ids, texts and labels that kiln search and numpy read. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/index.h"
#include "data/sample.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "collect embedding records into an index file for kiln search",
    .usage = "kiln index -o FILE [--append]",
    .notes =
        "The index is a safetensors file: vectors F32 [N, C], ids I64 [N], and in __metadata__\n"
        "the texts (or source paths), labels, the embedding model's weights hash and pooling\n"
        "(numpy reads it in a few lines: README.md, \"Custom embeddings\").  It is written\n"
        "atomically when the input ends; a `saved` record {path, count} then goes downstream.\n"
        "Embedding records are consumed, every other record passes through.\n"
        "example:\n"
        "  kiln load text:notes/ --split paragraphs | kiln tokenize --bytes --keep \\\n"
        "    | kiln embed --ckpt model.safetensors | kiln index -o notes.index | kiln show\n",
};

typedef struct options {
    const char *out;
    bool append;
} options;

/* The model and pooling of the stream's embeddings, checked against an index appended to. */
static void take_hdr(kindex *ix, const krec *hdr, bool appending, const char *path) {
    char model[32] = "", pool[16] = "";
    kobj_cstr(krec_get(hdr, "model_hash"), model, sizeof model);
    kobj_cstr(krec_get(hdr, "pool"), pool, sizeof pool);
    if (appending && model[0] && ix->model[0] && strcmp(model, ix->model))
        kiln_die(EX_KILN_DATA, "%s: the index holds vectors of model %s, the stream's are of %s",
                 path, ix->model, model);
    if (model[0]) snprintf(ix->model, sizeof ix->model, "%s", model);
    if (pool[0]) snprintf(ix->pool, sizeof ix->pool, "%s", pool);
}

/* An id as a signed 64-bit number (ids from kiln load are u64 counters). */
static int64_t record_id(const krec *r) {
    int64_t id;
    uint64_t u;
    if (krec_i64(r, "id", &id)) return id;
    if (krec_u64(r, "id", &u) && u <= INT64_MAX) return (int64_t)u;
    kiln_die(EX_KILN_DATA, "record %llu: an embedding needs an integer id",
             (unsigned long long)r->seq);
}

static void add_record(kindex **ixp, const krec *r, const krec *hdr, const char *path) {
    ktensor t;
    unsigned long long seq = (unsigned long long)r->seq;
    if (!krec_tensor(r, "embedding", &t) || t.dtype != KT_F32 || t.ndim != 1 || t.shape[0] < 1 ||
        t.shape[0] > 65536)
        kiln_die(EX_KILN_DATA, "record %llu: embedding is not an F32 [C] vector", seq);
    if (!*ixp) {
        *ixp = kindex_new((int)t.shape[0]);
        take_hdr(*ixp, hdr, false, path);
    }
    kindex *ix = *ixp;
    if (t.shape[0] != (uint64_t)ix->dim)
        kiln_die(EX_KILN_DATA, "record %llu: embedding of width %llu, the index's are %d wide", seq,
                 (unsigned long long)t.shape[0], ix->dim);
    float *v = xmalloc(sizeof(float) * (size_t)ix->dim);
    ktensor_copy(&t, v);
    for (int c = 0; c < ix->dim; c++)
        if (!isfinite(v[c])) kiln_die(EX_KILN_DATA, "record %llu: embedding has a NaN or Inf", seq);
    const char *text = NULL, *label = NULL;
    size_t tn = 0, ln = 0;
    if (!krec_str(r, "text", &text, &tn)) krec_str(r, "src", &text, &tn);
    krec_str(r, "label", &label, &ln);
    kindex_add(ix, record_id(r), v, text, tn, label, ln);
    free(v);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    options o = {0};
    kopt rows[] = {
        KOPT_STRING('o', "out-file", &o.out, "FILE", "the index file to write",
                    .flags = KOPT_REQUIRED),
        KOPT_BOOL(0, "append", &o.append, "add to FILE's rows instead of starting anew"),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    kreader *r = kiln_cli_reader(&cli);
    kwriter *w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    char err[512];
    kindex *ix = NULL;
    if (o.append) {
        int rc = kindex_read(o.out, &ix, err, sizeof err);
        if (rc) kiln_die(rc, "%s", err);
        take_hdr(ix, hdr, true, o.out);
    }
    kwriter_hdr_begin(w, hdr, NULL, krec_u64_or(hdr, "seed", 0));
    kwriter_end(w);
    krec rec;
    while (!kwriter_gone(w) && kreader_next(r, &rec)) {
        if (krec_is(&rec, "embedding"))
            add_record(&ix, &rec, hdr, o.out);
        else
            kwriter_pass(w, &rec);
        if (kiln_stop_signal()) break;
    }
    if (!ix) kiln_die(EX_KILN_DATA, "no embedding records: nothing to index (run kiln embed)");
    if (!kiln_stop_signal() && !kwriter_gone(w)) { /* an interrupted index is not written */
        int rc = kindex_write(ix, o.out, err, sizeof err);
        if (rc) kiln_fail(r, w, rc, err);
        kwriter_begin(w, "saved");
        kw_str(w, "path", o.out);
        kw_u64(w, "count", (uint64_t)ix->n);
        kwriter_end(w);
    }
    kindex_free(ix);
    kiln_finish(r, w);
}
