/* index — embeddings in and out of a safetensors file. */
#include "ckpt/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/safetensors.h"
#include "core/util.h"
#include "data/json.h"

kindex *kindex_new(int dim) {
    kindex *ix = xcalloc(1, sizeof *ix);
    ix->dim = dim;
    snprintf(ix->pool, sizeof ix->pool, "mean");
    return ix;
}

void kindex_free(kindex *ix) {
    if (!ix) return;
    for (int64_t i = 0; i < ix->n; i++) free(ix->texts[i]), free(ix->labels[i]);
    free(ix->texts), free(ix->labels), free(ix->vectors), free(ix->ids), free(ix->tokenizer);
    free(ix);
}

static char *copy_str(const char *s, size_t n) {
    char *c = xmalloc(n + 1);
    if (n) memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

static void grow(kindex *ix) {
    if (ix->n < ix->cap) return;
    ix->cap = ix->cap ? 2 * ix->cap : 256;
    size_t cap = (size_t)ix->cap;
    ix->vectors = xrealloc(ix->vectors, xmul(xmul(cap, (size_t)ix->dim), sizeof(float)));
    ix->ids = xrealloc(ix->ids, xmul(cap, sizeof(int64_t)));
    ix->texts = xrealloc(ix->texts, xmul(cap, sizeof(char *)));
    ix->labels = xrealloc(ix->labels, xmul(cap, sizeof(char *)));
}

void kindex_add(kindex *ix, int64_t id, const float *v, const char *text, size_t text_len,
                const char *label, size_t label_len) {
    grow(ix);
    memcpy(ix->vectors + (size_t)ix->n * ix->dim, v, sizeof(float) * (size_t)ix->dim);
    ix->ids[ix->n] = id;
    ix->texts[ix->n] = copy_str(text ? text : "", text ? text_len : 0);
    ix->labels[ix->n] = copy_str(label ? label : "", label ? label_len : 0);
    ix->n++;
}

/* strs as a JSON array of strings (malloc'd). */
static char *json_array(char *const *strs, int64_t n) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) kiln_die(EX_KILN_SOFTWARE, "out of memory (index metadata)");
    fputc('[', f);
    for (int64_t i = 0; i < n; i++) {
        if (i) fputc(',', f);
        json_put_str(f, strs[i], strlen(strs[i]));
    }
    fputc(']', f);
    if (fclose(f)) kiln_die(EX_KILN_SOFTWARE, "out of memory (index metadata)");
    return buf;
}

int kindex_write(const kindex *ix, const char *path, char *err, size_t errsz) {
    uint64_t vshape[2] = {(uint64_t)ix->n, (uint64_t)ix->dim}, ishape[1] = {(uint64_t)ix->n};
    st_entry t[2] = {{"vectors", ktensor_make(KT_F32, ix->vectors, 2, vshape)},
                     {"ids", ktensor_make(KT_I64, ix->ids, 1, ishape)}};
    char *texts = json_array(ix->texts, ix->n), *labels = json_array(ix->labels, ix->n);
    st_meta_entry meta[7] = {{"format", "pt"},   {"kiln", "index"},    {"texts", texts},
                             {"labels", labels}, {"model", ix->model}, {"pool", ix->pool}};
    size_t nm = 6;
    if (ix->tokenizer) meta[nm++] = (st_meta_entry){"tokenizer", ix->tokenizer};
    int rc = st_write(path, t, 2, meta, nm, err, errsz);
    free(texts), free(labels);
    return rc;
}

/* A metadata array of n strings into out (owned copies). */
static int read_strings(const stfile *f, const char *key, int64_t n, char **out, const char *path,
                        char *err, size_t errsz) {
    const char *s = st_meta(f, key);
    char jerr[128];
    jval *a = s ? json_parse(s, strlen(s), 2, jerr, sizeof jerr) : NULL;
    bool ok = a && a->type == JSON_ARR && (int64_t)a->n == n;
    for (int64_t i = 0; ok && i < n; i++) ok = a->items[i].type == JSON_STR;
    for (int64_t i = 0; ok && i < n; i++) out[i] = copy_str(a->items[i].s, a->items[i].len);
    json_free(a);
    return ok ? 0
              : kiln_errf(err, errsz, EX_KILN_DATA,
                          "%s: __metadata__ %s is not an array of %lld strings", path, key,
                          (long long)n);
}

static int read_index(const stfile *f, const char *path, kindex *ix, char *err, size_t errsz) {
    const ktensor *v = st_find(f, "vectors"), *ids = st_find(f, "ids");
    const char *kind = st_meta(f, "kiln");
    if (!kind || strcmp(kind, "index") || !v || !ids)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "%s: not a kiln index (vectors, ids and __metadata__ kiln=index)", path);
    if (v->dtype != KT_F32 || v->ndim != 2 || ids->dtype != KT_I64 || ids->ndim != 1 ||
        ids->shape[0] != v->shape[0] || v->shape[1] < 1 || v->shape[1] > 65536)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: vectors must be F32 [N, C] and ids I64 [N]",
                         path);
    ix->n = ix->cap = (int64_t)v->shape[0];
    size_t n = (size_t)ix->n ? (size_t)ix->n : 1;
    ix->vectors = xmalloc(xmul(xmul(n, (size_t)ix->dim), sizeof(float)));
    ix->ids = xmalloc(xmul(n, sizeof(int64_t)));
    ix->texts = xcalloc(n, sizeof(char *));
    ix->labels = xcalloc(n, sizeof(char *));
    ktensor_copy(v, ix->vectors);
    ktensor_copy(ids, ix->ids);
    int rc = read_strings(f, "texts", ix->n, ix->texts, path, err, errsz);
    if (!rc) rc = read_strings(f, "labels", ix->n, ix->labels, path, err, errsz);
    const char *model = st_meta(f, "model"), *pool = st_meta(f, "pool"),
               *tok = st_meta(f, "tokenizer");
    snprintf(ix->model, sizeof ix->model, "%s", model ? model : "");
    snprintf(ix->pool, sizeof ix->pool, "%s", pool ? pool : "mean");
    if (tok) ix->tokenizer = xstrdup(tok);
    return rc;
}

int kindex_read(const char *path, kindex **out, char *err, size_t errsz) {
    stfile *f;
    int rc = st_open(path, &f, err, errsz);
    if (rc) return rc;
    const ktensor *v = st_find(f, "vectors");
    kindex *ix = kindex_new(v && v->ndim == 2 ? (int)v->shape[1] : 1);
    rc = read_index(f, path, ix, err, errsz);
    st_close(f);
    if (rc) {
        kindex_free(ix); /* (strings not read are NULL: free skips them) */
        return rc;
    }
    *out = ix;
    return 0;
}
