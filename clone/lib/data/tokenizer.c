/* tokenizer — bytes, gray levels and palettes; the hdr description; class and palette files. */
#include "data/tokenizer.h"

#include "core/rng.h"
#include "stream/stream.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- set-up ----------------------------------------------------------------------------- */

static void layout(ktokenizer *t, uint32_t nbase) {
    if (t->kind == KTOK_BPE) {
        t->bos = t->eos = t->pad = nbase; /* <|endoftext|>, the first special */
        t->class_base = nbase + kbpe_nspecials(t->bpe);
        t->vocab = t->class_base + t->nclasses;
        return;
    }
    t->bos = nbase;
    t->eos = nbase + 1;
    t->pad = nbase + 2;
    t->class_base = nbase + 3;
    t->vocab = t->class_base + t->nclasses;
}

static uint32_t base_symbols(const ktokenizer *t) {
    return t->kind == KTOK_BYTES    ? 256
           : t->kind == KTOK_BPE    ? kbpe_nbase(t->bpe)
           : t->kind == KTOK_LEVELS ? t->levels
                                    : t->npalette;
}

void ktok_init_bytes(ktokenizer *t) {
    memset(t, 0, sizeof *t);
    t->kind = KTOK_BYTES;
    layout(t, 256);
}

void ktok_init_levels(ktokenizer *t, uint32_t levels) {
    memset(t, 0, sizeof *t);
    t->kind = KTOK_LEVELS;
    t->levels = levels;
    layout(t, levels);
}

void ktok_init_palette(ktokenizer *t, const uint8_t (*palette)[3], uint32_t n) {
    memset(t, 0, sizeof *t);
    t->kind = KTOK_PALETTE;
    t->palette = xmalloc(xmul(n, 3));
    memcpy(t->palette, palette, (size_t)n * 3);
    t->npalette = n;
    layout(t, n);
}

void ktok_init_bpe(ktokenizer *t, kbpe *b) {
    memset(t, 0, sizeof *t);
    t->kind = KTOK_BPE;
    t->bpe = b;
    layout(t, kbpe_nbase(b));
}

void ktok_set_classes(ktokenizer *t, char **classes, uint32_t n) {
    kclasses_free(t->classes, t->nclasses);
    t->classes = classes;
    t->nclasses = n;
    layout(t, base_symbols(t));
}

void ktok_free(ktokenizer *t) {
    kclasses_free(t->classes, t->nclasses);
    free(t->palette);
    kbpe_free(t->bpe);
    memset(t, 0, sizeof *t);
}

int64_t ktok_class_token(const ktokenizer *t, const char *label, size_t len) {
    for (uint32_t i = 0; i < t->nclasses; i++)
        if (strlen(t->classes[i]) == len && memcmp(t->classes[i], label, len) == 0)
            return t->class_base + i;
    return -1;
}

const char *ktok_class_name(const ktokenizer *t, uint32_t token) {
    if (token < t->class_base || token - t->class_base >= t->nclasses) return NULL;
    return t->classes[token - t->class_base];
}

/* ---- encoding --------------------------------------------------------------------------- */

size_t ktok_encode_text(const ktokenizer *t, const uint8_t *s, size_t n, int64_t first, bool bos,
                        int32_t *out) {
    size_t k = 0;
    if (bos) out[k++] = (int32_t)t->bos;
    if (first >= 0) out[k++] = (int32_t)first;
    if (t->kind == KTOK_BPE)
        k += kbpe_encode(t->bpe, s, n, out + k);
    else
        for (size_t i = 0; i < n; i++) out[k++] = s[i];
    out[k++] = (int32_t)t->eos;
    return k;
}

size_t ktok_encode_image(const ktokenizer *t, const kimage *im, int64_t first, int32_t *out) {
    size_t k = 0, npix = (size_t)im->h * im->w;
    out[k++] = (int32_t)(first >= 0 ? first : t->bos);
    if (t->kind == KTOK_LEVELS) {
        /* floor(v * K / 256): equal-width bins, the identity for K = 256. */
        int32_t lut[256];
        for (int v = 0; v < 256; v++) lut[v] = (int32_t)((uint32_t)v * t->levels / 256);
        size_t nv = npix * im->c;
        for (size_t i = 0; i < nv; i++) out[k++] = lut[im->data[i]];
        return k;
    }
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = im->data + i * im->c;
        uint8_t rgb[3] = {p[0], im->c >= 3 ? p[1] : p[0], im->c >= 3 ? p[2] : p[0]};
        out[k++] = (int32_t)kpalette_nearest((const uint8_t(*)[3])t->palette, t->npalette, rgb);
    }
    return k;
}

/* ---- decoding --------------------------------------------------------------------------- */

size_t ktok_max_bytes(const ktokenizer *t) {
    return t->kind == KTOK_BPE ? kbpe_max_bytes(t->bpe) : 1;
}

uint32_t ktok_symbol_bytes(const ktokenizer *t, int32_t id) {
    if (id < 0 || (uint32_t)id >= t->bos) return 0;
    uint32_t len = 1;
    if (t->kind == KTOK_BPE) kbpe_token_bytes(t->bpe, (uint32_t)id, &len);
    return len;
}

bool ktok_is_text(const ktokenizer *t) {
    return t->kind == KTOK_BYTES || t->kind == KTOK_BPE;
}

size_t ktok_decode_text(const ktokenizer *t, const int32_t *tok, size_t n, uint8_t *out) {
    if (t->kind == KTOK_BPE) return kbpe_decode(t->bpe, tok, n, out);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (tok[i] >= 0 && tok[i] < 256) out[k++] = (uint8_t)tok[i];
    (void)t;
    return k;
}

/* The level's value: the centre of its bin rounded, so K = 256 maps v back to v. */
static uint8_t level_value(uint32_t level, uint32_t levels) {
    if (levels >= 256) return (uint8_t)level;
    return (uint8_t)((level * 255 + (levels - 1) / 2) / (levels - 1));
}

bool ktok_decode_image(const ktokenizer *t, const int32_t *tok, size_t n, kimage *im,
                       int64_t *class_token) {
    if (!t->height || !t->width || !t->channels || ktok_is_text(t)) return false;
    *class_token = -1;
    if (n > 0 && (uint32_t)tok[0] >= t->bos) {
        if ((uint32_t)tok[0] >= t->class_base) *class_token = tok[0];
        tok++, n--;
    }
    int c = (int)t->channels;
    kimage_reshape(im, (int)t->height, (int)t->width, c);
    memset(im->data, 0, kimage_bytes(im));
    size_t npix = (size_t)t->height * t->width;
    uint32_t nbase = base_symbols(t);
    if (t->kind == KTOK_LEVELS) {
        size_t nv = npix * c < n ? npix * c : n;
        for (size_t i = 0; i < nv; i++)
            if ((uint32_t)tok[i] < nbase) im->data[i] = level_value((uint32_t)tok[i], t->levels);
        return true;
    }
    size_t np = npix < n ? npix : n;
    for (size_t i = 0; i < np; i++) {
        if ((uint32_t)tok[i] >= nbase) continue;
        const uint8_t *rgb = t->palette[tok[i]];
        uint8_t *p = im->data + i * c;
        if (c >= 3)
            memcpy(p, rgb, 3);
        else
            p[0] = (uint8_t)((306 * rgb[0] + 601 * rgb[1] + 117 * rgb[2] + 512) >> 10);
        if (c == 4) p[3] = 255;
    }
    return true;
}

/* ---- the hdr description ---------------------------------------------------------------- */

static void pack_cstr(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_key_u64(msgpack_packer *pk, const char *key, uint64_t v) {
    pack_cstr(pk, key);
    msgpack_pack_uint64(pk, v);
}

void ktok_pack(const ktokenizer *t, msgpack_packer *pk) {
    static const char *kinds[] = {"bytes", "levels", "palette", "bpe"};
    bool image = !ktok_is_text(t);
    msgpack_pack_map(pk, 7 + (image ? 4 : 0) + (t->kind == KTOK_BPE ? 3 : 0));
    pack_cstr(pk, "kind");
    pack_cstr(pk, kinds[t->kind]);
    pack_key_u64(pk, "vocab", t->vocab);
    pack_key_u64(pk, "bos", t->bos);
    pack_key_u64(pk, "eos", t->eos);
    pack_key_u64(pk, "pad", t->pad);
    pack_key_u64(pk, "class_base", t->class_base);
    pack_cstr(pk, "classes");
    msgpack_pack_array(pk, t->nclasses);
    for (uint32_t i = 0; i < t->nclasses; i++) pack_cstr(pk, t->classes[i]);
    if (t->kind == KTOK_BPE) {
        size_t len;
        char *merges = kbpe_merges_text(t->bpe, &len);
        pack_cstr(pk, "merges");
        msgpack_pack_str(pk, len);
        msgpack_pack_str_body(pk, merges, len);
        free(merges);
        pack_cstr(pk, "specials");
        msgpack_pack_array(pk, kbpe_nspecials(t->bpe));
        for (uint32_t i = 0; i < kbpe_nspecials(t->bpe); i++)
            pack_cstr(pk, kbpe_special(t->bpe, i));
        char hash[20];
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)kbpe_hash(t->bpe));
        pack_cstr(pk, "hash");
        pack_cstr(pk, hash);
    }
    if (!image) return;
    if (t->kind == KTOK_LEVELS) {
        pack_key_u64(pk, "levels", t->levels);
    } else {
        pack_cstr(pk, "palette");
        msgpack_pack_array(pk, t->npalette);
        for (uint32_t i = 0; i < t->npalette; i++) {
            msgpack_pack_array(pk, 3);
            for (int k = 0; k < 3; k++) msgpack_pack_uint8(pk, t->palette[i][k]);
        }
    }
    pack_key_u64(pk, "height", t->height);
    pack_key_u64(pk, "width", t->width);
    pack_key_u64(pk, "channels", t->channels);
}

static bool get_u32(const msgpack_object *o, const char *key, uint32_t *v, bool required) {
    const msgpack_object *x = kobj_get(o, key);
    if (!x) return !required;
    if (x->type != MSGPACK_OBJECT_POSITIVE_INTEGER || x->via.u64 > UINT32_MAX) return false;
    *v = (uint32_t)x->via.u64;
    return true;
}

static bool read_classes(const msgpack_object *o, ktokenizer *t) {
    const msgpack_object *c = kobj_get(o, "classes");
    if (!c) return true;
    if (c->type != MSGPACK_OBJECT_ARRAY) return false;
    uint32_t n = c->via.array.size;
    char **names = xcalloc(n, sizeof *names);
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *s = &c->via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_STR) {
            kclasses_free(names, i);
            return false;
        }
        names[i] = xmalloc(s->via.str.size + 1);
        memcpy(names[i], s->via.str.ptr, s->via.str.size);
        names[i][s->via.str.size] = 0;
    }
    ktok_set_classes(t, names, n);
    return true;
}

static bool read_palette(const msgpack_object *o, ktokenizer *t) {
    const msgpack_object *p = kobj_get(o, "palette");
    if (!p || p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size < 1) return false;
    uint32_t n = p->via.array.size;
    uint8_t(*pal)[3] = xmalloc(xmul(n, 3));
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *c = &p->via.array.ptr[i];
        bool ok = c->type == MSGPACK_OBJECT_ARRAY && c->via.array.size == 3;
        for (int k = 0; ok && k < 3; k++) {
            const msgpack_object *v = &c->via.array.ptr[k];
            ok = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= 255;
            if (ok) pal[i][k] = (uint8_t)v->via.u64;
        }
        if (!ok) {
            free(pal);
            return false;
        }
    }
    ktok_init_palette(t, (const uint8_t(*)[3])pal, n);
    free(pal);
    return true;
}

/* The BPE vocabulary from the description's merges and specials (hash checked). */
static bool read_bpe(const msgpack_object *o, ktokenizer *t, char *err, size_t errlen) {
    const msgpack_object *m = kobj_get(o, "merges"), *sp = kobj_get(o, "specials"),
                         *h = kobj_get(o, "hash");
    if (!m || m->type != MSGPACK_OBJECT_STR || !sp || sp->type != MSGPACK_OBJECT_ARRAY ||
        sp->via.array.size < 1) {
        snprintf(err, errlen, "tokenizer description (kind bpe) lacks merges or specials");
        return false;
    }
    uint32_t n = sp->via.array.size;
    char **names = xcalloc(n, sizeof *names);
    bool ok = true;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *s = &sp->via.array.ptr[i];
        ok = ok && s->type == MSGPACK_OBJECT_STR && s->via.str.size < 256 &&
             !memchr(s->via.str.ptr, 0, s->via.str.size);
        names[i] = xmalloc(ok ? s->via.str.size + 1 : 1);
        names[i][0] = 0;
        if (ok) memcpy(names[i], s->via.str.ptr, s->via.str.size), names[i][s->via.str.size] = 0;
    }
    kbpe *b = NULL;
    if (!ok)
        snprintf(err, errlen, "tokenizer description (kind bpe): a special is not a short string");
    else
        b = kbpe_from_merges(m->via.str.ptr, m->via.str.size, (const char *const *)names, n,
                             "tokenizer merges", err, errlen);
    kclasses_free(names, n);
    if (!b) return false;
    char want[20], got[20] = "";
    snprintf(want, sizeof want, "%016llx", (unsigned long long)kbpe_hash(b));
    if (h && !kobj_cstr(h, got, sizeof got)) got[0] = '?';
    if (h && strcmp(want, got) != 0) {
        snprintf(err, errlen, "tokenizer description (kind bpe): hash %s, its merges give %s", got,
                 want);
        kbpe_free(b);
        return false;
    }
    ktok_init_bpe(t, b);
    return true;
}

bool ktok_from_obj(const msgpack_object *o, ktokenizer *t, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    char kind[16];
    if (!o || o->type != MSGPACK_OBJECT_MAP || !kobj_cstr(kobj_get(o, "kind"), kind, sizeof kind)) {
        snprintf(err, errlen, "tokenizer description is not a map with a kind");
        return false;
    }
    uint32_t levels = 0;
    bool ok = true;
    if (strcmp(kind, "bytes") == 0)
        ktok_init_bytes(t);
    else if (strcmp(kind, "levels") == 0) {
        ok = get_u32(o, "levels", &levels, true) && levels >= 2 && levels <= 256;
        if (ok) ktok_init_levels(t, levels);
    } else if (strcmp(kind, "palette") == 0)
        ok = read_palette(o, t);
    else if (strcmp(kind, "bpe") == 0) {
        if (!read_bpe(o, t, err, errlen)) return false;
    } else
        ok = false;
    ok = ok && read_classes(o, t) && get_u32(o, "height", &t->height, false) &&
         get_u32(o, "width", &t->width, false) && get_u32(o, "channels", &t->channels, false) &&
         t->channels <= 4 && (uint64_t)t->height * t->width <= (1ull << 28);
    /* The ids must be the ones this layout implies: a mismatch means another tokenizer. */
    uint32_t vocab = 0, bos = 0, eos = 0, pad = 0, class_base = 0;
    ok = ok && get_u32(o, "vocab", &vocab, true) && get_u32(o, "bos", &bos, true) &&
         get_u32(o, "eos", &eos, true) && get_u32(o, "pad", &pad, true) &&
         get_u32(o, "class_base", &class_base, true) && vocab == t->vocab && bos == t->bos &&
         eos == t->eos && pad == t->pad && class_base == t->class_base;
    if (!ok) {
        snprintf(err, errlen, "tokenizer description (kind %s) is malformed or inconsistent", kind);
        ktok_free(t);
    }
    return ok;
}

/* ---- files ------------------------------------------------------------------------------ */

void kclasses_free(char **names, uint32_t n) {
    for (uint32_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

/* Call fn on every line of a text file with its line number; stops on false. */
static bool for_each_line(const char *path, bool (*fn)(void *, char *, unsigned), void *ctx,
                          char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;
    bool ok = true;
    while (ok && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        ok = fn(ctx, line, lineno);
    }
    if (ok && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        ok = false;
    }
    free(line);
    fclose(f);
    return ok;
}

typedef struct {
    char **names;
    uint32_t n;
    const char *path;
    char *err;
    size_t errlen;
} classes_ctx;

static bool add_class(void *p, char *line, unsigned lineno) {
    classes_ctx *c = p;
    if (!*line) return true;
    for (uint32_t i = 0; i < c->n; i++)
        if (strcmp(c->names[i], line) == 0) {
            snprintf(c->err, c->errlen, "%s:%u: class '%s' listed twice", c->path, lineno, line);
            return false;
        }
    if (c->n >= 65536) {
        snprintf(c->err, c->errlen, "%s: more than 65536 classes", c->path);
        return false;
    }
    c->names = xrealloc(c->names, xmul(c->n + 1, sizeof *c->names));
    c->names[c->n++] = xstrdup(line);
    return true;
}

bool kclasses_load(const char *path, char ***names, uint32_t *n, char *err, size_t errlen) {
    classes_ctx c = {NULL, 0, path, err, errlen};
    if (!for_each_line(path, add_class, &c, err, errlen)) {
        kclasses_free(c.names, c.n);
        return false;
    }
    if (c.n == 0) {
        snprintf(err, errlen, "%s: no class names in the file", path);
        return false;
    }
    *names = c.names, *n = c.n;
    return true;
}

typedef struct {
    uint8_t (*pal)[3];
    uint32_t n;
    const char *path;
    char *err;
    size_t errlen;
} palette_ctx;

static bool add_colour(void *p, char *line, unsigned lineno) {
    palette_ctx *c = p;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    int r, g, b, end = 0;
    if (sscanf(line, " %n", &end) == 0 && line[end] == 0) return true; /* blank */
    end = 0;
    if (sscanf(line, "%d %d %d %n", &r, &g, &b, &end) != 3 || line[end] || r < 0 || r > 255 ||
        g < 0 || g > 255 || b < 0 || b > 255 || c->n >= 65536) {
        snprintf(c->err, c->errlen, "%s:%u: want 'R G B' with values 0..255", c->path, lineno);
        return false;
    }
    c->pal = xrealloc(c->pal, xmul(c->n + 1, 3));
    c->pal[c->n][0] = (uint8_t)r, c->pal[c->n][1] = (uint8_t)g, c->pal[c->n][2] = (uint8_t)b;
    c->n++;
    return true;
}

bool kpalette_load(const char *path, uint8_t (**palette)[3], uint32_t *n, char *err,
                   size_t errlen) {
    palette_ctx c = {NULL, 0, path, err, errlen};
    if (!for_each_line(path, add_colour, &c, err, errlen)) {
        free(c.pal);
        return false;
    }
    if (c.n == 0) {
        snprintf(err, errlen, "%s: no colours in the palette file", path);
        return false;
    }
    *palette = c.pal, *n = c.n;
    return true;
}

bool kpalette_save(const char *path, const uint8_t (*palette)[3], uint32_t n, char *err,
                   size_t errlen) {
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: cannot create (%s)", path, strerror(errno));
        return false;
    }
    fprintf(f, "# kiln palette: %u colours, R G B\n", n);
    for (uint32_t i = 0; i < n; i++)
        fprintf(f, "%u %u %u\n", palette[i][0], palette[i][1], palette[i][2]);
    bool ok = f == stdout ? fflush(f) == 0 : fclose(f) == 0;
    if (!ok) snprintf(err, errlen, "%s: write error (%s)", path, strerror(errno));
    return ok;
}

/* ---- k-means ---------------------------------------------------------------------------- */

static inline uint32_t dist2(const uint8_t *a, const float *b) {
    float d0 = a[0] - b[0], d1 = a[1] - b[1], d2 = a[2] - b[2];
    return (uint32_t)(d0 * d0 + d1 * d1 + d2 * d2);
}

uint32_t kpalette_nearest(const uint8_t (*palette)[3], uint32_t n, const uint8_t rgb[3]) {
    uint32_t best = 0, best_d = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        int d0 = rgb[0] - palette[i][0], d1 = rgb[1] - palette[i][1], d2 = rgb[2] - palette[i][2];
        uint32_t d = (uint32_t)(d0 * d0 + d1 * d1 + d2 * d2);
        if (d < best_d) best_d = d, best = i;
    }
    return best;
}

static int by_luma(const void *a, const void *b) {
    const uint8_t *x = a, *y = b;
    int lx = 299 * x[0] + 587 * x[1] + 114 * x[2], ly = 299 * y[0] + 587 * y[1] + 114 * y[2];
    return lx != ly ? (lx > ly) - (lx < ly) : memcmp(x, y, 3);
}

void kpalette_kmeans(const uint8_t *rgb, size_t n, uint32_t k, int iters, uint64_t seed,
                     uint8_t (*out)[3]) {
    float(*cent)[3] = xcalloc(k, sizeof *cent);
    krng r;
    krng_init(&r, seed, 0, 0, KRNG_PALETTE);
    /* k-means++: each next centre drawn with probability proportional to squared distance. */
    uint32_t *d = xmalloc(xmul(n ? n : 1, sizeof *d));
    size_t first = n ? krng_below(&r, n) : 0;
    for (int c = 0; c < 3; c++) cent[0][c] = n ? rgb[first * 3 + c] : 0;
    for (size_t i = 0; i < n; i++) d[i] = dist2(rgb + i * 3, cent[0]);
    for (uint32_t j = 1; j < k; j++) {
        double total = 0;
        for (size_t i = 0; i < n; i++) total += d[i];
        size_t pick = 0;
        if (total > 0) {
            double target = krng_uniform(&r) * total, acc = 0;
            for (pick = 0; pick + 1 < n && (acc += d[pick]) <= target; pick++) {
            }
        }
        for (int c = 0; c < 3; c++) cent[j][c] = n ? rgb[pick * 3 + c] : 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t dj = dist2(rgb + i * 3, cent[j]);
            if (dj < d[i]) d[i] = dj;
        }
    }
    /* Lloyd rounds. */
    double(*sum)[4] = xmalloc(xmul(k, sizeof *sum));
    for (int it = 0; it < iters; it++) {
        memset(sum, 0, (size_t)k * sizeof *sum);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = rgb + i * 3;
            uint32_t best = 0, best_d = UINT32_MAX;
            for (uint32_t j = 0; j < k; j++) {
                uint32_t dj = dist2(p, cent[j]);
                if (dj < best_d) best_d = dj, best = j;
            }
            for (int c = 0; c < 3; c++) sum[best][c] += p[c];
            sum[best][3] += 1;
        }
        for (uint32_t j = 0; j < k; j++)
            if (sum[j][3] > 0)
                for (int c = 0; c < 3; c++) cent[j][c] = (float)(sum[j][c] / sum[j][3]);
    }
    for (uint32_t j = 0; j < k; j++)
        for (int c = 0; c < 3; c++) out[j][c] = (uint8_t)(cent[j][c] + 0.5f);
    qsort(out, k, 3, by_luma);
    free(cent), free(d), free(sum);
}

bool ktok_same(const ktokenizer *a, const ktokenizer *b) {
    if (a->kind != b->kind || a->vocab != b->vocab || a->bos != b->bos || a->eos != b->eos ||
        a->pad != b->pad || a->class_base != b->class_base || a->nclasses != b->nclasses)
        return false;
    if (a->kind == KTOK_LEVELS && a->levels != b->levels) return false;
    if (a->kind == KTOK_BPE && kbpe_hash(a->bpe) != kbpe_hash(b->bpe)) return false;
    if (a->kind == KTOK_PALETTE &&
        (a->npalette != b->npalette ||
         memcmp(a->palette, b->palette, (size_t)a->npalette * sizeof a->palette[0])))
        return false;
    for (uint32_t i = 0; i < a->nclasses; i++)
        if (strcmp(a->classes[i], b->classes[i])) return false;
    return true;
}

void ktok_describe(const ktokenizer *t, char *buf, size_t n) {
    const char *kind = t->kind == KTOK_BYTES    ? "bytes"
                       : t->kind == KTOK_LEVELS ? "levels"
                       : t->kind == KTOK_BPE    ? "bpe"
                                                : "palette";
    unsigned k = t->kind == KTOK_LEVELS ? t->levels : t->npalette;
    char sym[48] = "";
    if (t->kind == KTOK_BPE)
        snprintf(sym, sizeof sym, " %u merges %016llx", kbpe_nmerges(t->bpe),
                 (unsigned long long)kbpe_hash(t->bpe));
    else if (t->kind != KTOK_BYTES)
        snprintf(sym, sizeof sym, " %u", k);
    snprintf(buf, n, "%s%s, %u classes, vocab %u", kind, sym, t->nclasses, t->vocab);
}
