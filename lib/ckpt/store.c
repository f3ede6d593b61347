/* ckptfile — ckpt record <-> safetensors files (see ckptfile.h for the layout). */
#include "ckpt/store.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/hf.h"
#include "core/util.h"

static char *xasprintf(const char *fmt, ...) KILN_PRINTF(1, 2);
static char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

char *ckpt_file_name(const char *dir, uint64_t step) {
    if (!dir) return xasprintf("step-%06llu.safetensors", (unsigned long long)step);
    return xasprintf("%s/step-%06llu.safetensors", dir, (unsigned long long)step);
}

char *ckpt_optim_name(const char *path) {
    const char *ext = ".safetensors";
    size_t n = strlen(path), e = strlen(ext);
    if (n >= e && strcmp(path + n - e, ext) == 0)
        return xasprintf("%.*s.optim%s", (int)(n - e), path, ext);
    return xasprintf("%s.optim%s", path, ext);
}

/* ---- loading ---------------------------------------------------------------------------- */

static bool meta_u64(const stfile *f, const char *key, uint64_t *out) {
    const char *s = st_meta(f, key);
    return s && parse_u64(s, out);
}

/* A metadata value that must be a JSON object when present. */
static int meta_json(const kckpt *ck, const char *key, jval **out, char *err, size_t errsz) {
    const char *s = st_meta(ck->file, key);
    char jerr[200];
    *out = NULL;
    if (!s) return 0;
    *out = json_parse(s, strlen(s), 16, jerr, sizeof jerr);
    if (!*out || (*out)->type != JSON_OBJ)
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: __metadata__ %s is not a JSON object%s%s",
                         ck->path, key, *out ? "" : ": ", *out ? "" : jerr);
    return 0;
}

static int open_optim(kckpt *ck, const char *name, char *err, size_t errsz) {
    /* The sibling lives next to the model file (which may be reached through a link). */
    const char *slash = strrchr(ck->path, '/');
    char *p = slash ? xasprintf("%.*s/%s", (int)(slash - ck->path), ck->path, name) : xstrdup(name);
    int rc = strchr(name, '/')
                 ? kiln_errf(err, errsz, EX_KILN_DATA,
                             "%s: __metadata__ optim is not a plain file name", ck->path)
                 : st_open(p, &ck->optim, err, errsz);
    if (rc == EX_KILN_IO) /* a model file that names its optimizer file promises it */
        rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s: optimizer state %s is missing or unreadable",
                       ck->path, p);
    free(p);
    if (rc) return rc;
    const char *lr = st_meta(ck->optim, "lr");
    if (!meta_u64(ck->optim, "step", &ck->optim_step) || !lr || !parse_f64(lr, &ck->lr))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "%s: optimizer file %s lacks step or lr metadata", ck->path, name);
    return 0;
}

int kckpt_open(const char *path, bool with_optim, kckpt **out, char *err, size_t errsz) {
    kckpt *ck = xcalloc(1, sizeof *ck);
    char *model = NULL;
    bool hf = khf_is_hf(path, &model); /* a Hugging Face directory (lib/ckpt/hf.h) */
    ck->path = hf ? model : xstrdup(path);
    *out = NULL;
    int rc = st_open(ck->path, &ck->file, err, errsz);
    if (!rc) rc = meta_json(ck, "config", &ck->config, err, errsz);
    if (!rc) rc = meta_json(ck, "tokenizer", &ck->tokenizer, err, errsz);
    if (!rc) rc = meta_json(ck, "state", &ck->state, err, errsz);
    if (!rc && (hf || (!ck->config && khf_has_config(ck->path)))) rc = khf_read(ck, err, errsz);
    if (!rc) {
        ck->has_step = meta_u64(ck->file, "step", &ck->step);
        ck->has_cursor = meta_u64(ck->file, "cursor", &ck->cursor);
        ck->has_seed = meta_u64(ck->file, "seed", &ck->seed);
        const char *optim = st_meta(ck->file, "optim");
        if (with_optim && optim) rc = open_optim(ck, optim, err, errsz);
    }
    if (rc) {
        kckpt_free(ck);
        return rc;
    }
    *out = ck;
    return 0;
}

kckpt *kckpt_load(const char *path, bool with_optim) {
    char err[600];
    kckpt *ck;
    int rc = kckpt_open(path, with_optim, &ck, err, sizeof err);
    if (rc) kiln_die(rc, "%s", err);
    return ck;
}

void kckpt_free(kckpt *ck) {
    if (!ck) return;
    st_close(ck->file);
    st_close(ck->optim);
    json_free(ck->config);
    json_free(ck->tokenizer);
    json_free(ck->state);
    free(ck->path);
    free(ck);
}

const ktensor *kckpt_tensor(const kckpt *ck, const char *name) {
    const ktensor *t = st_find(ck->file, name);
    const char *prefix = "transformer.";
    if (!t && !strncmp(name, prefix, strlen(prefix))) /* GPT2Model's files: bare names */
        t = st_find(ck->file, name + strlen(prefix));
    return t;
}

static const ktensor *moment(const kckpt *ck, const char *prefix, const char *name) {
    if (!ck->optim) return NULL;
    char *full = xasprintf("%s%s", prefix, name);
    const ktensor *t = st_find(ck->optim, full);
    free(full);
    return t;
}

const ktensor *kckpt_m(const kckpt *ck, const char *name) {
    return moment(ck, "m.", name);
}

const ktensor *kckpt_v(const kckpt *ck, const char *name) {
    return moment(ck, "v.", name);
}

bool kckpt_config_u64(const kckpt *ck, const char *key, uint64_t *out) {
    return json_u64(json_get(ck->config, key), out);
}

bool kckpt_state_f64(const kckpt *ck, const char *key, double *out) {
    const jval *v = json_get(ck->state, key);
    if (!v || (v->type != JSON_REAL && v->type != JSON_INT && v->type != JSON_UINT)) return false;
    *out = json_num(v);
    return true;
}

/* ---- writing ---------------------------------------------------------------------------- */

/* A msgpack value as JSON (config and tokenizer maps: scalars, strings, arrays, maps). */
static bool put_json(FILE *f, const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", f);
        return true;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "true" : "false", f);
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        fprintf(f, "%llu", (unsigned long long)o->via.u64);
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        fprintf(f, "%lld", (long long)o->via.i64);
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        json_put_real(f, o->via.f64);
        return true;
    case MSGPACK_OBJECT_STR:
        json_put_str(f, o->via.str.ptr, o->via.str.size);
        return true;
    case MSGPACK_OBJECT_ARRAY:
        fputc('[', f);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) fputc(',', f);
            if (!put_json(f, &o->via.array.ptr[i])) return false;
        }
        fputc(']', f);
        return true;
    case MSGPACK_OBJECT_MAP:
        fputc('{', f);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR) return false;
            if (i) fputc(',', f);
            json_put_str(f, k->via.str.ptr, k->via.str.size);
            fputc(':', f);
            if (!put_json(f, &o->via.map.ptr[i].val)) return false;
        }
        fputc('}', f);
        return true;
    default:
        return false; /* bin, ext: not metadata */
    }
}

/* A map field as a JSON string (malloc'd), NULL when absent; *bad when not a plain map. */
char *kckpt_map_json(const msgpack_object *o, bool *bad) {
    if (!o) return NULL;
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f) kiln_die(EX_KILN_SOFTWARE, "out of memory (checkpoint metadata)");
    bool ok = o->type == MSGPACK_OBJECT_MAP && put_json(f, o);
    if (fclose(f) != 0) kiln_die(EX_KILN_SOFTWARE, "out of memory (checkpoint metadata)");
    if (!ok) {
        *bad = true;
        free(s);
        return NULL;
    }
    return s;
}

/* Strings to free after the write. */
typedef struct {
    char **s;
    size_t n, cap;
} strs;

static const char *keep(strs *k, char *s) {
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 16;
        k->s = xrealloc(k->s, xmul(k->cap, sizeof *k->s));
    }
    return k->s[k->n++] = s;
}

static void free_strs(strs *k) {
    for (size_t i = 0; i < k->n; i++) free(k->s[i]);
    free(k->s);
}

/* Append the tensors of a name->tensor map to *t, names prefixed. */
static const char *gather(const msgpack_object *map, const char *prefix, st_entry **t, size_t *n,
                          strs *names) {
    if (!map || map->type != MSGPACK_OBJECT_MAP) return "is not a map of tensors";
    uint32_t k = map->via.map.size;
    *t = xrealloc(*t, xmul(*n + k, sizeof **t));
    for (uint32_t i = 0; i < k; i++) {
        const msgpack_object *key = &map->via.map.ptr[i].key;
        if (key->type != MSGPACK_OBJECT_STR) return "has a key that is not a string";
        if (memchr(key->via.str.ptr, 0, key->via.str.size)) return "has a name with a NUL byte";
        if (!kobj_tensor(&map->via.map.ptr[i].val, &(*t)[*n].t)) return "holds a non-tensor";
        (*t)[*n].name =
            keep(names, xasprintf("%s%.*s", prefix, (int)key->via.str.size, key->via.str.ptr));
        (*n)++;
    }
    return NULL;
}

static int write_optim(const msgpack_object *optim, const char *path, char *err, size_t errsz) {
    const msgpack_object *step = kobj_get(optim, "step"), *lr = kobj_get(optim, "lr");
    st_entry *t = NULL;
    size_t n = 0;
    strs names = {0};
    const char *why = NULL;
    int rc = 0;
    if (!step || step->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s: ckpt record: optim.step is not a u64", path);
    else if (!lr || (lr->type != MSGPACK_OBJECT_FLOAT64 && lr->type != MSGPACK_OBJECT_FLOAT32))
        rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s: ckpt record: optim.lr is not a real", path);
    else if ((why = gather(kobj_get(optim, "m"), "m.", &t, &n, &names)) ||
             (why = gather(kobj_get(optim, "v"), "v.", &t, &n, &names)))
        rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s: ckpt record: optim.m/v %s", path, why);
    else {
        char lrs[40], steps[24];
        json_format_real(lrs, sizeof lrs, lr->via.f64);
        snprintf(steps, sizeof steps, "%llu", (unsigned long long)step->via.u64);
        st_meta_entry meta[] = {{"format", "pt"}, {"step", steps}, {"lr", lrs}};
        rc = st_write(path, t, n, meta, 3, err, errsz);
    }
    free(t);
    free_strs(&names);
    return rc;
}

/* A data-parallel run's `cursors` array as "C0,C1,...", or NULL when the record has none
 * (or it is not an array of u64). */
static char *cursor_list(const msgpack_object *a) {
    if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size == 0) return NULL;
    size_t n = a->via.array.size, cap = n * 21 + 1, at = 0;
    char *s = xmalloc(cap);
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *c = &a->via.array.ptr[i];
        if (c->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            free(s);
            return NULL;
        }
        at += (size_t)snprintf(s + at, cap - at, "%s%llu", i ? "," : "",
                               (unsigned long long)c->via.u64);
    }
    return s;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int ckpt_write_record(const krec *r, const char *path, double eval_loss, char *err, size_t errsz) {
    uint64_t step, cursor, seed;
    bool bad = false, has_cursor = krec_u64(r, "cursor", &cursor),
         has_seed = krec_u64(r, "seed", &seed);
    if (!krec_u64(r, "step", &step))
        return kiln_errf(err, errsz, EX_KILN_DATA, "%s: ckpt record without a u64 step", path);
    char *config = kckpt_map_json(krec_get(r, "config"), &bad);
    char *tokenizer = kckpt_map_json(krec_get(r, "tokenizer"), &bad);
    char *adapter = kckpt_map_json(krec_get(r, "adapter"), &bad); /* LoRA: lib/ckpt/adapter.h */
    char *state = kckpt_map_json(krec_get(r, "state"), &bad);     /* a trainer's: record.h */
    st_entry *t = NULL;
    size_t n = 0;
    strs names = {0};
    const char *why = NULL;
    int rc = 0;
    if (bad)
        rc = kiln_errf(err, errsz, EX_KILN_DATA,
                       "%s: ckpt record: config, tokenizer, adapter or state is not a map of plain "
                       "values",
                       path);
    else if (!config)
        rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s: ckpt record without a config map", path);
    else if ((why = gather(krec_get(r, "tensors"), "", &t, &n, &names)))
        rc = kiln_errf(err, errsz, EX_KILN_DATA, "%s: ckpt record: tensors %s", path, why);

    st_meta_entry meta[12];
    size_t nm = 0;
    char steps[24], cursors[24], seeds[24], losss[40];
    char *optim_path = NULL;
    meta[nm++] = (st_meta_entry){"format", "pt"};
    meta[nm++] = (st_meta_entry){"config", config};
    if (tokenizer) meta[nm++] = (st_meta_entry){"tokenizer", tokenizer};
    if (adapter) meta[nm++] = (st_meta_entry){"adapter", adapter};
    if (state) meta[nm++] = (st_meta_entry){"state", state};
    snprintf(steps, sizeof steps, "%llu", (unsigned long long)step);
    meta[nm++] = (st_meta_entry){"step", steps};
    snprintf(cursors, sizeof cursors, "%llu", (unsigned long long)cursor);
    if (has_cursor) meta[nm++] = (st_meta_entry){"cursor", cursors};
    char *rank_cursors = cursor_list(krec_get(r, "cursors"));
    if (rank_cursors) meta[nm++] = (st_meta_entry){"cursors", rank_cursors};
    snprintf(seeds, sizeof seeds, "%llu", (unsigned long long)seed);
    if (has_seed) meta[nm++] = (st_meta_entry){"seed", seeds};
    json_format_real(losss, sizeof losss, eval_loss);
    if (isfinite(eval_loss)) meta[nm++] = (st_meta_entry){"eval_loss", losss};
    const msgpack_object *optim = krec_get(r, "optim");
    if (!rc && optim) {
        optim_path = ckpt_optim_name(path);
        meta[nm++] = (st_meta_entry){"optim", base_name(optim_path)};
        rc = write_optim(optim, optim_path, err, errsz);
    }
    bool optim_written = optim && !rc;
    if (!rc) rc = st_write(path, t, n, meta, nm, err, errsz);
    if (rc && optim_written) remove(optim_path); /* no orphan optimizer file */
    free(optim_path);
    free(t);
    free_strs(&names);
    free(config);
    free(tokenizer);
    free(adapter);
    free(state);
    free(rank_cursors);
    return rc;
}
