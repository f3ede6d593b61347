/* loader — kiln load's sources and the `sample` records their items become (lib/data/loader.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/util.h"
#include "data/idx.h"
#include "data/image.h"
#include "data/json.h"
#include "data/loader.h"
#include "data/png.h"
#include "data/text.h"
#include "data/tokenizer.h"
#include "data/walk.h"
#include "stream/mpscan.h"
#include "stream/options.h"

/* ---- the record counters ---------------------------------------------------------------- */

bool kloader_finished(const kloader *L) {
    return (L->limit && L->emitted >= L->limit) || kiln_stop_signal() || kwriter_gone(L->w);
}

/* Count one item of the full stream; true when this shard, past --skip, wants it. */
static bool take(kloader *L) {
    uint64_t r = L->record++;
    if (r % L->shard_n != L->shard_i) return false;
    return L->kept++ >= L->skip;
}

static void begin_sample(kloader *L, const char *src) {
    kwriter_begin(L->w, "sample");
    kw_u64(L->w, "id", L->id);
    kw_u64(L->w, "epoch", L->epoch);
    kw_str(L->w, "src", src);
}

/* "kiln load: 12000 records, 30000/s (epoch 0)" on stderr twice a second, terminals only. */
void kloader_progress(kloader *L, bool last) {
    double now = kiln_now();
    if (!last && now - L->shown < 0.5) return;
    L->shown = now;
    fprintf(stderr, "\r%s: %llu records, %.0f/s (epoch %llu)%s", kiln_prog(),
            (unsigned long long)L->emitted, L->emitted / (now - L->start + 1e-9),
            (unsigned long long)L->epoch, last ? "\n" : "");
}

static void end_item(kloader *L) {
    kwriter_end(L->w);
    L->emitted++;
    if (L->tty && (L->emitted & 255) == 0) kloader_progress(L, false);
}

/* A per-item problem: an err record with --skip-bad, else the end of the run. */
static void item_error(kloader *L, const char *src, const char *what) {
    if (!L->skip_bad)
        kiln_die(EX_KILN_DATA, "%s: %s (record %llu)", src, what, (unsigned long long)L->id);
    kwriter_begin(L->w, "err");
    kw_str(L->w, "stage", kiln_prog());
    kw_u64(L->w, "id", L->id);
    kw_u64(L->w, "epoch", L->epoch);
    kw_str(L->w, "src", src);
    kw_str(L->w, "error", what);
    end_item(L);
    L->bad++;
}

static void put_image(kloader *L, const kimage *im) {
    uint64_t shape[3] = {(uint64_t)im->h, (uint64_t)im->w, (uint64_t)im->c};
    ktensor t = ktensor_make(KT_U8, im->data, 3, shape);
    kw_tensor(L->w, "image", &t);
}

/* Resize L->im when --size asks; returns the image to write. */
static const kimage *sized(kloader *L) {
    if (!L->height || (L->im.h == L->height && L->im.w == L->width)) return &L->im;
    kimage_resize(&L->im, L->height, L->width, &L->work);
    return &L->work;
}

/* ---- text ------------------------------------------------------------------------------- */

static void emit_text(kloader *L, const char *path, const uint8_t *text, size_t len) {
    begin_sample(L, path);
    kw_strn(L->w, "text", (const char *)text, len);
    end_item(L);
}

/* A file is one item (docs) or as many as it has pieces; a file that cannot be used is one
 * item, reported by item_error. */
static void load_text_file(kloader *L, const char *path) {
    char err[512];
    bool docs = L->split.kind == KSPLIT_DOCS;
    if (docs && !take(L)) { /* skipped without reading it */
        L->id++;
        return;
    }
    uint8_t *buf, *text;
    size_t len, n;
    bool ok = kread_file(path, &buf, &len, err, sizeof err);
    size_t bad_at = ok ? ktext_utf8_check(buf, len) : 0;
    if (ok && bad_at < len && L->utf8_reject) {
        snprintf(err, sizeof err, "invalid UTF-8 at byte %zu (--utf8 replace repairs it)", bad_at);
        free(buf);
        ok = false;
    }
    if (!ok) {
        if (docs || take(L)) item_error(L, path, err);
        L->id++;
        return;
    }
    text = buf, n = len;
    if (bad_at < len) text = ktext_utf8_repair(buf, len, &n);
    if (docs) {
        emit_text(L, path, text, n);
        L->id++;
    }
    size_t pos = 0, start, plen;
    while (!docs && !kloader_finished(L) && ksplit_next(&L->split, text, n, &pos, &start, &plen)) {
        if (take(L)) emit_text(L, path, text + start, plen);
        L->id++;
    }
    if (text != buf) free(text);
    free(buf);
}

/* ---- PNG -------------------------------------------------------------------------------- */

/* The first subfolder of path below the source root, or NULL for files in the root. */
static const char *png_label(const kload_source *s, const char *path, size_t *len) {
    const char *rel = path + s->root_len;
    while (*rel == '/') rel++;
    const char *slash = strchr(rel, '/');
    if (!slash) return NULL;
    *len = (size_t)(slash - rel);
    return rel;
}

static bool has_name(char *const *names, uint32_t n, const char *label, size_t len) {
    for (uint32_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && memcmp(names[i], label, len) == 0) return true;
    return false;
}

static void load_png_file(kloader *L, const kload_source *s, const char *path) {
    char err[512];
    size_t label_len = 0;
    const char *label = png_label(s, path, &label_len);
    if (label && L->classes_path && !has_name(L->classes, L->nclasses, label, label_len)) {
        snprintf(err, sizeof err, "label '%.*s' is not in the classes file %s", (int)label_len,
                 label, L->classes_path);
        item_error(L, path, err);
    } else if (!kpng_read_file(path, L->channels, L->max_pixels, &L->im, err, sizeof err)) {
        item_error(L, path, err);
    } else {
        begin_sample(L, path);
        put_image(L, sized(L));
        if (label) kw_strn(L->w, "label", label, label_len);
        end_item(L);
    }
}

/* ---- IDX -------------------------------------------------------------------------------- */

static void idx_problem(kloader *L, kload_source *s, const char *file, const char *what) {
    if (!L->skip_bad) kiln_die(EX_KILN_DATA, "%s: %s", file, what);
    s->error_src = file;
    snprintf(s->error, sizeof s->error, "%s", what);
}

static void prepare_idx(kloader *L, kload_source *s) {
    char err[400];
    const uint64_t max_bytes = 16ull << 30;
    if (!kidx_read(s->path, max_bytes, &s->images, err, sizeof err)) {
        idx_problem(L, s, s->path, err);
        return;
    }
    uint32_t c = s->images.ndim == 4 ? s->images.dims[3] : 1;
    if (s->images.ndim < 3 || (c != 1 && c != 3 && c != 4)) {
        idx_problem(L, s, s->path, "not images: want [N,H,W] or [N,H,W,C]");
        return;
    }
    if (!s->labels_path) return;
    if (!kidx_read(s->labels_path, max_bytes, &s->labels, err, sizeof err)) {
        idx_problem(L, s, s->labels_path, err);
    } else if (s->labels.ndim != 1 || s->labels.count != s->images.count) {
        snprintf(err, sizeof err, "%zu labels for %zu images in %s", s->labels.count,
                 s->images.count, s->path);
        idx_problem(L, s, s->labels_path, err);
    } else if (L->classes_path) {
        for (size_t i = 0; i < s->labels.count; i++)
            if (s->labels.data[i] >= L->nclasses) {
                snprintf(err, sizeof err,
                         "label %u of image %zu has no name in the classes file %s",
                         s->labels.data[i], i, L->classes_path);
                idx_problem(L, s, s->labels_path, err);
                break;
            }
    }
}

static void load_idx_image(kloader *L, const kload_source *s, size_t i) {
    const kidx *x = &s->images;
    int h = (int)x->dims[1], w = (int)x->dims[2], c = x->ndim == 4 ? (int)x->dims[3] : 1;
    char src[4200], label[16];
    kimage_convert(x->data + i * x->item_bytes, h, w, c, L->channels ? L->channels : c, &L->im);
    snprintf(src, sizeof src, "%s#%zu", s->path, i);
    begin_sample(L, src);
    put_image(L, sized(L));
    if (s->labels.data) {
        unsigned v = s->labels.data[i];
        if (L->classes)
            kw_str(L->w, "label", L->classes[v]);
        else
            snprintf(label, sizeof label, "%u", v), kw_str(L->w, "label", label);
    }
    end_item(L);
}

static void load_idx(kloader *L, const kload_source *s) {
    if (s->error[0]) {
        if (take(L)) item_error(L, s->error_src, s->error);
        L->id++;
        return;
    }
    for (size_t i = 0; i < s->images.count && !kloader_finished(L); i++, L->id++)
        if (take(L)) load_idx_image(L, s, i);
}

/* ---- JSON lines ------------------------------------------------------------------------- */

static bool reserved_key(const char *k) {
    return !strcmp(k, "t") || !strcmp(k, "seq") || !strcmp(k, "id") || !strcmp(k, "epoch") ||
           !strcmp(k, "src");
}

static void load_jsonl_line(kloader *L, const char *path, size_t lineno, const uint8_t *line,
                            size_t len) {
    char err[300], src[4200];
    snprintf(src, sizeof src, "%s:%zu", path, lineno);
    jval *v = json_parse((const char *)line, len, 16, err, sizeof err);
    if (v && v->type != JSON_OBJ) snprintf(err, sizeof err, "not a JSON object");
    /* What the next stage's reader would refuse is refused here, naming the line. */
    if (!v || v->type != JSON_OBJ || !json_fits_record(v, 8, err, sizeof err)) {
        item_error(L, src, err);
    } else {
        begin_sample(L, src);
        for (size_t i = 0; i < v->n; i++) {
            if (reserved_key(v->keys[i]) || strlen(v->keys[i]) != v->keylens[i]) continue;
            kw_key(L->w, v->keys[i]);
            json_pack(kw_packer(L->w), &v->items[i]);
        }
        end_item(L);
    }
    json_free(v);
}

static void load_jsonl_file(kloader *L, const char *path) {
    char err[512];
    uint8_t *buf;
    size_t len;
    if (!kread_file(path, &buf, &len, err, sizeof err)) {
        if (take(L)) item_error(L, path, err);
        L->id++;
        return;
    }
    ksplit lines = {.kind = KSPLIT_LINES};
    size_t pos = 0, start, n, lineno = 0, prev_end = 0;
    while (!kloader_finished(L) && ksplit_next(&lines, buf, len, &pos, &start, &n)) {
        for (size_t i = prev_end; i < start; i++) lineno += buf[i] == '\n';
        prev_end = start;
        if (take(L)) load_jsonl_line(L, path, lineno + 1, buf + start, n);
        L->id++;
    }
    free(buf);
}

/* ---- sources ---------------------------------------------------------------------------- */

void kload_source_open(kloader *L, const char *arg, kload_source *s) {
    char err[512];
    memset(s, 0, sizeof *s);
    const char *colon = strchr(arg, ':');
    if (!colon || colon[1] == 0)
        kiln_usage_error("source '%s' wants a kind: text:, png:, idx: or jsonl:", arg);
    size_t klen = (size_t)(colon - arg);
    s->path = colon + 1;
    if (klen == 4 && !strncmp(arg, "text", 4))
        s->kind = KLOAD_TEXT;
    else if (klen == 3 && !strncmp(arg, "png", 3))
        s->kind = KLOAD_PNG;
    else if (klen == 5 && !strncmp(arg, "jsonl", 5))
        s->kind = KLOAD_JSONL;
    else if (klen == 3 && !strncmp(arg, "idx", 3))
        s->kind = KLOAD_IDX;
    else
        kiln_usage_error("unknown source kind '%.*s' (text, png, idx, jsonl)", (int)klen, arg);
    if (s->kind == KLOAD_IDX) {
        char *paths = xstrdup(s->path), *comma = strchr(paths, ','); /* argv stays intact */
        s->path = paths;
        if (comma) *comma = 0, s->labels_path = comma + 1;
        prepare_idx(L, s);
        return;
    }
    const char *suffix = s->kind == KLOAD_PNG ? ".png" : NULL;
    if (!kwalk(s->path, suffix, &s->files, &s->nfiles, err, sizeof err))
        kiln_die(EX_KILN_DATA, "%s", err);
    if (s->nfiles == 0)
        kiln_die(EX_KILN_DATA, "%s: no %sfiles found", s->path, suffix ? "PNG " : "");
    s->root_len = strlen(s->path);
}

void kloader_pass(kloader *L, const kload_source *s) {
    for (size_t i = 0; i < s->nfiles && !kloader_finished(L); i++) {
        if (s->kind == KLOAD_TEXT)
            load_text_file(L, s->files[i]);
        else if (s->kind == KLOAD_JSONL)
            load_jsonl_file(L, s->files[i]);
        else if (take(L))
            load_png_file(L, s, s->files[i]), L->id++;
        else
            L->id++;
    }
    if (s->kind == KLOAD_IDX) load_idx(L, s);
}

/* ---- --shuffle: every item indexed once, each epoch a permutation ---------------------- */

/* One item of one unshuffled pass; its index in the table is its id. */
typedef struct {
    uint32_t src;
    uint32_t file;  /* text, jsonl, png: the file; idx: unused */
    uint64_t start; /* text, jsonl: the piece's bytes; idx: the image */
    uint64_t len;   /* ITEM_ERROR: the file (or idx source) could not be used */
    uint64_t line;  /* jsonl: 1-based line number */
} litem;

#define ITEM_ERROR UINT64_MAX

struct kload_index {
    litem *items;
    size_t n, cap;
    uint8_t ***text; /* [src][file]: a repaired text's bytes, else NULL (read from the file) */
    size_t **text_len;
    uint64_t *perm; /* [n]: this epoch's order */
};

static void add_item(kload_index *x, litem it) {
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 1024;
        x->items = xrealloc(x->items, xmul(x->cap, sizeof *x->items));
    }
    x->items[x->n++] = it;
}

/* A text or jsonl file's pieces; a file that cannot be used is one error item. */
static void index_text_file(kloader *L, kload_index *x, uint32_t k, uint32_t f, const char *path,
                            bool jsonl) {
    char err[512];
    uint8_t *buf, *text;
    size_t len, n;
    if (!kread_file(path, &buf, &len, err, sizeof err)) {
        add_item(x, (litem){k, f, 0, ITEM_ERROR, 0});
        return;
    }
    size_t bad_at = jsonl ? len : ktext_utf8_check(buf, len);
    if (bad_at < len && L->utf8_reject) {
        free(buf);
        add_item(x, (litem){k, f, 0, ITEM_ERROR, 0});
        return;
    }
    text = buf, n = len;
    if (bad_at < len) { /* kept repaired in memory: its offsets are not the file's */
        text = ktext_utf8_repair(buf, len, &n);
        x->text[k][f] = text;
        x->text_len[k][f] = n;
    }
    ksplit lines = {.kind = KSPLIT_LINES};
    const ksplit *sp = jsonl ? &lines : &L->split;
    if (!jsonl && sp->kind == KSPLIT_DOCS) {
        add_item(x, (litem){k, f, 0, n, 0});
    } else {
        size_t pos = 0, start, plen, lineno = 0, prev_end = 0;
        while (ksplit_next(sp, text, n, &pos, &start, &plen)) {
            for (size_t i = prev_end; jsonl && i < start; i++) lineno += text[i] == '\n';
            prev_end = start;
            add_item(x, (litem){k, f, start, plen, lineno + 1});
        }
    }
    free(buf);
}

kload_index *kload_index_build(kloader *L, const kload_source *src, int nsrc) {
    kload_index *x = xcalloc(1, sizeof *x);
    x->text = xcalloc((size_t)nsrc, sizeof *x->text);
    x->text_len = xcalloc((size_t)nsrc, sizeof *x->text_len);
    for (int k = 0; k < nsrc; k++) {
        const kload_source *s = &src[k];
        x->text[k] = xcalloc(s->nfiles, sizeof **x->text);
        x->text_len[k] = xcalloc(s->nfiles, sizeof **x->text_len);
        for (size_t f = 0; f < s->nfiles; f++) {
            if (s->kind == KLOAD_PNG)
                add_item(x, (litem){(uint32_t)k, (uint32_t)f, 0, 0, 0});
            else
                index_text_file(L, x, (uint32_t)k, (uint32_t)f, s->files[f],
                                s->kind == KLOAD_JSONL);
        }
        if (s->kind == KLOAD_IDX && s->error[0])
            add_item(x, (litem){(uint32_t)k, 0, 0, ITEM_ERROR, 0});
        for (size_t i = 0; s->kind == KLOAD_IDX && !s->error[0] && i < s->images.count; i++)
            add_item(x, (litem){(uint32_t)k, 0, i, 0, 0});
    }
    x->perm = xcalloc(x->n, sizeof *x->perm);
    return x;
}

/* A piece's bytes: from the repaired copy, or read from the file (exits 74 when the file
 * changed under the run). */
static uint8_t *piece(const kload_index *x, const kload_source *s, const litem *it, bool *owned) {
    uint8_t *mem = x->text[it->src][it->file];
    *owned = !mem;
    if (mem) return mem + it->start;
    const char *path = s->files[it->file];
    FILE *f = fopen(path, "rb");
    uint8_t *buf = xmalloc(it->len ? it->len : 1);
    if (!f || fseeko(f, (off_t)it->start, SEEK_SET) != 0 || fread(buf, 1, it->len, f) != it->len)
        kiln_die(EX_KILN_IO, "%s: cannot read %llu bytes at %llu (did it change during the run?)",
                 path, (unsigned long long)it->len, (unsigned long long)it->start);
    fclose(f);
    return buf;
}

static void load_item(kloader *L, const kload_source *src, const kload_index *x, const litem *it) {
    const kload_source *s = &src[it->src];
    char err[512];
    if (it->len == ITEM_ERROR) {
        if (s->kind == KLOAD_IDX) {
            item_error(L, s->error_src, s->error);
        } else { /* the reason again, as the unshuffled pass gives it */
            uint8_t *buf;
            size_t len;
            const char *path = s->files[it->file];
            if (kread_file(path, &buf, &len, err, sizeof err)) {
                snprintf(err, sizeof err, "invalid UTF-8 at byte %zu (--utf8 replace repairs it)",
                         ktext_utf8_check(buf, len));
                free(buf);
            }
            item_error(L, path, err);
        }
        return;
    }
    if (s->kind == KLOAD_PNG) return load_png_file(L, s, s->files[it->file]);
    if (s->kind == KLOAD_IDX) return load_idx_image(L, s, it->start);
    bool owned;
    uint8_t *p = piece(x, s, it, &owned);
    if (s->kind == KLOAD_JSONL)
        load_jsonl_line(L, s->files[it->file], it->line, p, it->len);
    else
        emit_text(L, s->files[it->file], p, it->len);
    if (owned) free(p);
}

/* One epoch in the order of a permutation drawn from (seed, epoch). */
void kloader_shuffled(kloader *L, const kload_source *src, const kload_index *x) {
    uint64_t *perm = x->perm;
    krng rng;
    krng_init(&rng, L->seed, 0, L->epoch, 0x73687566); /* "shuf" */
    for (size_t i = 0; i < x->n; i++) perm[i] = i;
    for (size_t i = x->n; i > 1; i--) {
        size_t j = (size_t)krng_below(&rng, i);
        uint64_t t = perm[i - 1];
        perm[i - 1] = perm[j], perm[j] = t;
    }
    for (size_t k = 0; k < x->n && !kloader_finished(L); k++) {
        L->id = perm[k];
        if (take(L)) load_item(L, src, x, &x->items[perm[k]]);
    }
    L->id = x->n;
}

void kload_index_free(kload_index *x, const kload_source *src, int nsrc) {
    if (!x) return;
    for (int k = 0; k < nsrc; k++) {
        for (size_t f = 0; f < src[k].nfiles; f++) free(x->text[k][f]);
        free(x->text[k]), free(x->text_len[k]);
    }
    free(x->text), free(x->text_len), free(x->items), free(x->perm);
    free(x);
}

/* The hdr field `classes`: an array of names. */
static void put_classes(kloader *L, char *const *names, uint32_t n) {
    kw_key(L->w, "classes");
    msgpack_packer *pk = kw_packer(L->w);
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_str(pk, strlen(names[i]));
        msgpack_pack_str_body(pk, names[i], strlen(names[i]));
    }
}

/* Classes for the hdr when no --classes file names them: the sorted PNG subfolders, or
 * "0".."max" for IDX labels. */
static void infer_classes(kloader *L, const kload_source *src, int nsrc) {
    char **names = NULL;
    uint32_t n = 0;
    for (int k = 0; k < nsrc; k++) {
        const kload_source *s = &src[k];
        int max_label = -1;
        for (size_t i = 0; s->labels.data && i < s->labels.count; i++)
            if (s->labels.data[i] > max_label) max_label = s->labels.data[i];
        for (int v = 0; v <= max_label; v++) {
            char buf[8];
            snprintf(buf, sizeof buf, "%d", v);
            if (!has_name(names, n, buf, strlen(buf)))
                names = xrealloc(names, xmul(n + 1, sizeof *names)), names[n++] = xstrdup(buf);
        }
        for (size_t i = 0; s->kind == KLOAD_PNG && i < s->nfiles; i++) {
            size_t len;
            const char *label = png_label(s, s->files[i], &len);
            if (!label || has_name(names, n, label, len)) continue;
            names = xrealloc(names, xmul(n + 1, sizeof *names));
            names[n] = xmalloc(len + 1);
            memcpy(names[n], label, len), names[n++][len] = 0;
        }
    }
    if (n > KILN_MAX_CONTAINER) /* a reader refuses longer arrays (stream/mpscan.h) */
        kiln_warn("%u labels, more than a hdr's classes may hold (%d): none written; records "
                  "keep their labels (kiln tokenize --no-class-token)",
                  n, KILN_MAX_CONTAINER);
    else if (n)
        put_classes(L, names, n);
    kclasses_free(names, n);
}

void kloader_hdr(kloader *L, const kload_source *src, int nsrc) {
    kwriter_hdr_begin(L->w, NULL, "sample", L->seed);
    if (L->classes)
        put_classes(L, L->classes, L->nclasses);
    else
        infer_classes(L, src, nsrc);
    /* A resumed stream says where it starts, so kiln batch counts its cursor from there. */
    if (L->skip) kw_u64(L->w, "skip", L->skip);
    kwriter_end(L->w);
}

void kload_source_free(kload_source *s) {
    kwalk_free(s->files, s->nfiles);
    kidx_free(&s->images), kidx_free(&s->labels);
    if (s->kind == KLOAD_IDX) free((char *)s->path);
}

void kloader_free(kloader *L) {
    kimage_free(&L->im), kimage_free(&L->work);
    kclasses_free(L->classes, L->nclasses);
}
