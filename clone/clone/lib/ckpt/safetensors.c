/* safetensors — validated reader over an mmap'ed file, atomic writer (see safetensors.h). */
#include "ckpt/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/afile.h"
#include "data/json.h"
#include "core/util.h"

struct stfile {
    char *name;
    const uint8_t *bytes; /* the whole file */
    size_t size;
    bool mapped;
    const uint8_t *data; /* the data buffer after the header */
    size_t data_size;
    size_t n;
    char **names;
    ktensor *tensors;
    size_t nmeta;
    char **meta_keys, **meta_values;
};

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* ---- header validation ------------------------------------------------------------------ */

static int parse_meta(stfile *f, const jval *m, char *err, size_t errsz) {
    if (m->type != JSON_OBJ)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: __metadata__ is not an object", f->name);
    f->meta_keys = xcalloc(m->n, sizeof *f->meta_keys);
    f->meta_values = xcalloc(m->n, sizeof *f->meta_values);
    for (size_t i = 0; i < m->n; i++) {
        const jval *v = &m->items[i];
        if (v->type != JSON_STR || strlen(v->s) != v->len || strlen(m->keys[i]) != m->keylens[i])
            return kiln_errf(err, errsz, EX_KILN_DATA,
                             "%s: __metadata__ \"%.60s\" is not a string without NUL bytes",
                             f->name, m->keys[i]);
        f->meta_keys[i] = xstrdup(m->keys[i]);
        f->meta_values[i] = xstrdup(v->s);
        f->nmeta++;
    }
    return 0;
}

/* One tensor's {dtype, shape, data_offsets}; its offsets are checked against the buffer. */
static int parse_tensor(stfile *f, const char *name, const jval *info, uint64_t off[2], char *err,
                        size_t errsz) {
    const char *why = NULL;
    const jval *dtype = json_get(info, "dtype"), *shape = json_get(info, "shape");
    const jval *offsets = json_get(info, "data_offsets");
    ktensor *t = &f->tensors[f->n];
    if (info->type != JSON_OBJ)
        why = "is not an object";
    else if (!dtype || !shape || !offsets || info->n != 3)
        why = "needs exactly dtype, shape and data_offsets";
    else if (dtype->type != JSON_STR ||
             (t->dtype = kdtype_from_name(dtype->s, dtype->len)) == KT_INVALID)
        why = "has an unsupported dtype";
    else if (shape->type != JSON_ARR || shape->n > KT_MAX_DIMS)
        why = "has a shape that is not an array of at most 8 sizes";
    else if (offsets->type != JSON_ARR || offsets->n != 2 ||
             !json_u64(&offsets->items[0], &off[0]) || !json_u64(&offsets->items[1], &off[1]))
        why = "has data_offsets that are not [begin, end]";
    else if (off[0] > off[1] || off[1] > f->data_size)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "%s: tensor \"%.60s\": data_offsets [%llu, %llu] outside the data "
                         "buffer of %zu bytes (truncated file?)",
                         f->name, name, (unsigned long long)off[0], (unsigned long long)off[1],
                         f->data_size);
    if (!why) {
        t->ndim = (int)shape->n;
        for (size_t d = 0; d < shape->n && !why; d++)
            if (!json_u64(&shape->items[d], &t->shape[d]))
                why = "has a negative or non-integer size";
    }
    uint64_t bytes = 0;
    if (!why && !ktensor_expected_bytes(t, &bytes)) why = "has a shape whose size overflows";
    if (!why && bytes != off[1] - off[0])
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "%s: tensor \"%.60s\": shape and dtype need %llu bytes but data_offsets "
                         "span %llu",
                         f->name, name, (unsigned long long)bytes,
                         (unsigned long long)(off[1] - off[0]));
    if (why)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: tensor \"%.60s\" %s", f->name, name, why);
    t->data = f->data + off[0];
    t->nbytes = (size_t)bytes;
    f->names[f->n] = xstrdup(name);
    f->n++;
    return 0;
}

typedef struct {
    uint64_t begin, end;
    size_t index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The tensors must tile the data buffer: sorted by offset, each starts where the last
 * ended, and the last ends at the end of the file. */
static int check_tiling(stfile *f, span *s, char *err, size_t errsz) {
    qsort(s, f->n, sizeof *s, span_cmp);
    uint64_t pos = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (s[i].begin != pos)
            return kiln_errf(err, errsz, EX_KILN_DATA,
                             "%s: tensor \"%.60s\" %s at byte %llu of the data", f->name,
                             f->names[s[i].index],
                             s[i].begin < pos ? "overlaps another" : "leaves a gap before it",
                             (unsigned long long)s[i].begin);
        pos = s[i].end;
    }
    if (pos != f->data_size)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: %llu bytes after the last tensor", f->name,
                         (unsigned long long)(f->data_size - pos));
    return 0;
}

static int parse_header(stfile *f, const char *text, size_t n, char *err, size_t errsz) {
    char jerr[200];
    if (n == 0 || text[0] != '{')
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "%s: header does not start with '{': not a safetensors file", f->name);
    jval *h = json_parse(text, n, 4, jerr, sizeof jerr);
    if (!h) return kiln_errf(err, errsz, EX_KILN_DATA, "%s: bad JSON header: %s", f->name, jerr);
    f->names = xcalloc(h->n, sizeof *f->names);
    f->tensors = xcalloc(h->n, sizeof *f->tensors);
    span *spans = xcalloc(h->n, sizeof *spans);
    int rc = 0;
    for (size_t i = 0; i < h->n && !rc; i++) {
        if (strlen(h->keys[i]) != h->keylens[i])
            rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s: tensor name with a NUL byte", f->name);
        else if (strcmp(h->keys[i], "__metadata__") == 0)
            rc = parse_meta(f, &h->items[i], err, errsz);
        else {
            uint64_t off[2] = {0, 0};
            rc = parse_tensor(f, h->keys[i], &h->items[i], off, err, errsz);
            if (!rc) spans[f->n - 1] = (span){off[0], off[1], f->n - 1};
        }
    }
    if (!rc) rc = check_tiling(f, spans, err, errsz);
    free(spans);
    json_free(h);
    return rc;
}

/* ---- reading ---------------------------------------------------------------------------- */

int st_parse(const void *bytes, size_t n, const char *name, stfile **out, char *err, size_t errsz) {
    stfile *f = xcalloc(1, sizeof *f);
    f->name = xstrdup(name);
    f->bytes = bytes;
    f->size = n;
    *out = NULL;
    int rc = 0;
    uint64_t hlen = n >= 8 ? le64(bytes) : 0;
    if (n < 8)
        rc = kiln_errf(err, errsz, EX_KILN_DATA,
                       "%s: truncated: %zu bytes, a safetensors file has at least 8", name, n);
    else if (hlen > ST_MAX_HEADER)
        rc = kiln_errf(err, errsz, EX_KILN_DATA,
                       "%s: header length %llu over the %u-byte limit: not a safetensors file",
                       name, (unsigned long long)hlen, ST_MAX_HEADER);
    else if (hlen > n - 8)
        rc = kiln_errf(err, errsz, EX_KILN_DATA,
                       "%s: truncated: header of %llu bytes but only %zu bytes follow the length",
                       name, (unsigned long long)hlen, n - 8);
    if (!rc) {
        f->data = f->bytes + 8 + hlen;
        f->data_size = n - 8 - (size_t)hlen;
        rc = parse_header(f, (const char *)f->bytes + 8, (size_t)hlen, err, errsz);
    }
    if (rc) {
        st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

int st_open(const char *path, stfile **out, char *err, size_t errsz) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kiln_errf(err, errsz, EX_KILN_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kiln_errf(err, errsz, EX_KILN_IO, "%s: not a regular file", path);
    }
    size_t size = (size_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return kiln_errf(err, errsz, EX_KILN_IO, "%s: mmap: %s", path, strerror(e));
        }
    }
    close(fd); /* the mapping keeps the file */
    int rc = st_parse(map ? map : "", size, path, out, err, errsz);
    if (rc) {
        if (map) munmap(map, size);
        return rc;
    }
    (*out)->mapped = map != NULL;
    return 0;
}

stfile *st_open_or_die(const char *path) {
    char err[512];
    stfile *f;
    int rc = st_open(path, &f, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    return f;
}

void st_close(stfile *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)f->bytes, f->size);
    for (size_t i = 0; i < f->n; i++) free(f->names[i]);
    for (size_t i = 0; i < f->nmeta; i++) free(f->meta_keys[i]), free(f->meta_values[i]);
    free(f->names);
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->name);
    free(f);
}

size_t st_count(const stfile *f) {
    return f->n;
}

const char *st_name(const stfile *f, size_t i) {
    return i < f->n ? f->names[i] : NULL;
}

const ktensor *st_tensor(const stfile *f, size_t i) {
    return i < f->n ? &f->tensors[i] : NULL;
}

const ktensor *st_find(const stfile *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) return &f->tensors[i];
    return NULL;
}

const void *st_data(const stfile *f, size_t *n) {
    *n = f->data_size;
    return f->data;
}

size_t st_meta_count(const stfile *f) {
    return f->nmeta;
}

const char *st_meta_key(const stfile *f, size_t i) {
    return i < f->nmeta ? f->meta_keys[i] : NULL;
}

const char *st_meta_value(const stfile *f, size_t i) {
    return i < f->nmeta ? f->meta_values[i] : NULL;
}

const char *st_meta(const stfile *f, const char *key) {
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* ---- writing ---------------------------------------------------------------------------- */

static int check_entries(const char *path, const st_entry *t, size_t n, char *err, size_t errsz) {
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes;
        if (!t[i].name || strcmp(t[i].name, "__metadata__") == 0)
            return kiln_errf(err, errsz, EX_KILN_DATA, "%s: invalid tensor name", path);
        if (!ktensor_expected_bytes(&t[i].t, &bytes) || bytes != t[i].t.nbytes ||
            (bytes && !t[i].t.data))
            return kiln_errf(err, errsz, EX_KILN_DATA,
                             "%s: tensor \"%.60s\": data size does not match dtype and shape", path,
                             t[i].name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t[i].name, t[j].name) == 0)
                return kiln_errf(err, errsz, EX_KILN_DATA, "%s: tensor \"%.60s\" given twice", path,
                                 t[i].name);
    }
    return 0;
}

/* The JSON header, padded with spaces so the data starts 8-byte aligned. */
static char *build_header(const st_entry *t, size_t n, const st_meta_entry *meta, size_t nmeta,
                          size_t *len) {
    char *h = NULL;
    size_t hn = 0;
    FILE *f = open_memstream(&h, &hn);
    if (!f) kiln_die(EX_KILN_SOFTWARE, "out of memory (safetensors header)");
    fputc('{', f);
    if (nmeta) {
        fputs("\"__metadata__\":{", f);
        for (size_t i = 0; i < nmeta; i++) {
            if (i) fputc(',', f);
            json_put_str(f, meta[i].key, strlen(meta[i].key));
            fputc(':', f);
            json_put_str(f, meta[i].value, strlen(meta[i].value));
        }
        fputc('}', f);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (i || nmeta) fputc(',', f);
        json_put_str(f, t[i].name, strlen(t[i].name));
        fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", kdtype_name(t[i].t.dtype));
        for (int d = 0; d < t[i].t.ndim; d++)
            fprintf(f, "%s%llu", d ? "," : "", (unsigned long long)t[i].t.shape[d]);
        fprintf(f, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                (unsigned long long)(off + t[i].t.nbytes));
        off += t[i].t.nbytes;
    }
    fputc('}', f);
    while ((8 + ftell(f)) % 8) fputc(' ', f);
    if (fclose(f) != 0) kiln_die(EX_KILN_SOFTWARE, "out of memory (safetensors header)");
    *len = hn;
    return h;
}

int st_write(const char *path, const st_entry *tensors, size_t n, const st_meta_entry *meta,
             size_t nmeta, char *err, size_t errsz) {
    int rc = check_entries(path, tensors, n, err, errsz);
    if (rc) return rc;
    size_t hlen;
    char *header = build_header(tensors, n, meta, nmeta, &hlen);
    if (hlen > ST_MAX_HEADER) {
        free(header);
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: header of %zu bytes is over the limit",
                         path, hlen);
    }
    afile *a = afile_open(path, err, errsz);
    if (!a) {
        free(header);
        return EX_KILN_IO;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    afile_write(a, len8, sizeof len8);
    afile_write(a, header, hlen);
    for (size_t i = 0; i < n && afile_write(a, tensors[i].t.data, tensors[i].t.nbytes); i++) {
    }
    free(header);
    return afile_commit(a, err, errsz);
}
