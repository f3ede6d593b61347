/* bpe — GPT-2's byte-level BPE (lib/data/bpe.h). */
#include "data/bpe.h"

#include "core/util.h"
#include "data/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe_classes.h"

/* ---- bytes as characters (GPT-2's bytes_to_unicode) -------------------------------------- */

/* Byte b is written as code point byte_cp[b]; id i < 256 is byte id_byte[i]. */
static uint16_t byte_cp[256];
static uint8_t id_byte[256], byte_id[256];
static int16_t cp_byte[512]; /* code point -> byte, -1 if none */
static bool tables_ready;

static void init_tables(void) {
    if (tables_ready) return;
    int n = 0, extra = 0;
    bool printable[256] = {false};
    for (int b = '!'; b <= '~'; b++) printable[b] = true;
    for (int b = 0xa1; b <= 0xac; b++) printable[b] = true;
    for (int b = 0xae; b <= 0xff; b++) printable[b] = true;
    for (int b = 0; b < 256; b++)
        if (printable[b]) id_byte[n++] = (uint8_t)b, byte_cp[b] = (uint16_t)b;
    for (int b = 0; b < 256; b++)
        if (!printable[b]) id_byte[n++] = (uint8_t)b, byte_cp[b] = (uint16_t)(256 + extra++);
    for (int i = 0; i < 512; i++) cp_byte[i] = -1;
    for (int i = 0; i < 256; i++) {
        byte_id[id_byte[i]] = (uint8_t)i;
        cp_byte[byte_cp[i]] = (int16_t)i;
    }
    tables_ready = true;
}

/* One UTF-8 character at s[i]: its code point, or -1 for a byte that does not start a valid
 * sequence (overlong forms, surrogates and values above U+10FFFF are invalid); *len >= 1. */
static int32_t utf8_at(const uint8_t *s, size_t n, size_t i, size_t *len) {
    uint8_t c = s[i];
    *len = 1;
    if (c < 0x80) return c;
    int k = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (k == 0 || c > 0xf4 || (size_t)k >= n - i) return -1;
    uint32_t cp = c & (0x3f >> k);
    for (int j = 1; j <= k; j++) {
        uint8_t d = s[i + (size_t)j];
        if ((d & 0xc0) != 0x80) return -1;
        cp = cp << 6 | (d & 0x3f);
    }
    static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
    *len = (size_t)k + 1;
    return (int32_t)cp;
}

/* ---- character classes ------------------------------------------------------------------ */

enum { C_OTHER, C_LETTER, C_NUMBER, C_SPACE };

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid][0])
            hi = mid;
        else if (cp > r[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

#define NRANGES(a) (sizeof(a) / sizeof((a)[0]))

static int cp_class(int32_t cp) {
    if (cp < 0) return C_OTHER;
    if (cp < 128) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return C_LETTER;
        if (cp >= '0' && cp <= '9') return C_NUMBER;
        if (cp == ' ' || (cp >= '\t' && cp <= '\r')) return C_SPACE;
        return C_OTHER;
    }
    uint32_t u = (uint32_t)cp;
    if (in_ranges(kbpe_class_L, NRANGES(kbpe_class_L), u)) return C_LETTER;
    if (in_ranges(kbpe_class_N, NRANGES(kbpe_class_N), u)) return C_NUMBER;
    if (in_ranges(kbpe_class_S, NRANGES(kbpe_class_S), u)) return C_SPACE;
    return C_OTHER;
}

static int class_at(const uint8_t *s, size_t n, size_t i, size_t *len) {
    if (s[i] < 0x80) {
        *len = 1;
        return cp_class(s[i]);
    }
    return cp_class(utf8_at(s, n, i, len));
}

/* ---- the pre-split ---------------------------------------------------------------------- */

size_t kbpe_split_next(const uint8_t *s, size_t n, size_t i) {
    size_t len;
    /* 's|'t|'re|'ve|'m|'ll|'d */
    if (s[i] == '\'' && i + 1 < n) {
        uint8_t a = s[i + 1], b = i + 2 < n ? s[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return i + 3;
    }
    size_t j = i;
    int c = class_at(s, n, i, &len);
    /* " ?" before a letter, number or other run */
    if (s[i] == ' ' && i + 1 < n) {
        size_t l2;
        int c2 = class_at(s, n, i + 1, &l2);
        if (c2 != C_SPACE) c = c2, j = i + 1, len = l2;
    }
    if (c != C_SPACE) {
        /* \p{L}+ | \p{N}+ | [^\s\p{L}\p{N}]+ */
        j += len;
        while (j < n && class_at(s, n, j, &len) == c) j += len;
        return j;
    }
    /* \s+(?!\S) | \s+ : a run of white space; before a non-space its last character is left
     * for the next piece unless the run is that one character. */
    size_t last = j;
    j += len;
    while (j < n && class_at(s, n, j, &len) == C_SPACE) last = j, j += len;
    if (j == n || last == i) return j;
    return last;
}

/* ---- the vocabulary --------------------------------------------------------------------- */

struct kbpe {
    uint32_t nmerges, nspecials, maxlen;
    uint32_t (*merge)[2]; /* merge i: ids -> id 256 + i */
    uint32_t *off, *len;  /* ordinary token id -> bytes in pool */
    uint8_t *pool;
    size_t pool_len;
    char **specials;
    /* pair (a, b) -> merge index + 1; 0 empty */
    uint64_t *pkey;
    uint32_t *pval;
    size_t pcap;
    /* token bytes -> id + 1 (used while building and by encoder.json's check) */
    uint32_t *tval;
    size_t tcap;
    uint64_t hash;
};

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static inline size_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k;
}

static inline uint32_t pair_rank(const kbpe *b, uint32_t x, uint32_t y) {
    uint64_t k = (uint64_t)x << 32 | y;
    for (size_t h = mix(k) & (b->pcap - 1);; h = (h + 1) & (b->pcap - 1)) {
        if (!b->pval[h]) return UINT32_MAX;
        if (b->pkey[h] == k) return b->pval[h] - 1;
    }
}

/* The id of a byte string, or -1; with `insert`, a missing one is added as id. */
static int64_t token_find(kbpe *b, const uint8_t *s, uint32_t n, int64_t insert) {
    for (size_t h = mix(fnv(s, n, 0xcbf29ce484222325ull)) & (b->tcap - 1);;
         h = (h + 1) & (b->tcap - 1)) {
        uint32_t v = b->tval[h];
        if (!v) {
            if (insert >= 0) b->tval[h] = (uint32_t)insert + 1;
            return -1;
        }
        if (b->len[v - 1] == n && memcmp(b->pool + b->off[v - 1], s, n) == 0) return v - 1;
    }
}

static size_t pow2_above(size_t n) {
    size_t c = 16;
    while (c < 2 * n) c *= 2;
    return c;
}

/* Add ordinary token id with bytes s (id = 256 + merges so far, or a byte). */
static void add_token(kbpe *b, uint32_t id, const uint8_t *s, uint32_t n, size_t *pool_cap) {
    if (b->pool_len + n > *pool_cap) {
        *pool_cap = (*pool_cap + n) * 2;
        b->pool = xrealloc(b->pool, *pool_cap);
    }
    memcpy(b->pool + b->pool_len, s, n);
    b->off[id] = (uint32_t)b->pool_len, b->len[id] = n;
    b->pool_len += n;
    if (n > b->maxlen) b->maxlen = n;
}

/* Decode a byte-level token string (bytes_to_unicode characters) into bytes; false if a
 * character is not one of the 256. */
static bool unmap(const char *s, size_t n, uint8_t *out, uint32_t *outn) {
    size_t i = 0, len;
    uint32_t k = 0;
    while (i < n) {
        int32_t cp = utf8_at((const uint8_t *)s, n, i, &len);
        if (cp < 0 || cp >= 512 || cp_byte[cp] < 0) return false;
        out[k++] = (uint8_t)cp_byte[cp];
        i += len;
    }
    *outn = k;
    return true;
}

static kbpe *bpe_alloc(uint32_t nmerges_cap) {
    kbpe *b = xcalloc(1, sizeof *b);
    size_t ntok = (size_t)nmerges_cap + 256;
    b->merge = xmalloc(xmul(nmerges_cap ? nmerges_cap : 1, sizeof *b->merge));
    b->off = xmalloc(xmul(ntok, sizeof *b->off));
    b->len = xmalloc(xmul(ntok, sizeof *b->len));
    b->pcap = pow2_above(nmerges_cap);
    b->pkey = xmalloc(xmul(b->pcap, sizeof *b->pkey));
    b->pval = xcalloc(b->pcap, sizeof *b->pval);
    b->tcap = pow2_above(ntok);
    b->tval = xcalloc(b->tcap, sizeof *b->tval);
    return b;
}

void kbpe_free(kbpe *b) {
    if (!b) return;
    for (uint32_t i = 0; i < b->nspecials; i++) free(b->specials[i]);
    free(b->specials), free(b->merge), free(b->off), free(b->len), free(b->pool);
    free(b->pkey), free(b->pval), free(b->tval);
    free(b);
}

static void add_merge(kbpe *b, uint32_t x, uint32_t y, size_t *pool_cap) {
    uint32_t id = 256 + b->nmerges;
    uint32_t n = b->len[x] + b->len[y];
    uint8_t *tmp = xmalloc(n);
    memcpy(tmp, b->pool + b->off[x], b->len[x]);
    memcpy(tmp + b->len[x], b->pool + b->off[y], b->len[y]);
    add_token(b, id, tmp, n, pool_cap);
    free(tmp);
    token_find(b, b->pool + b->off[id], n, id);
    uint64_t k = (uint64_t)x << 32 | y;
    size_t h = mix(k) & (b->pcap - 1);
    while (b->pval[h]) h = (h + 1) & (b->pcap - 1);
    b->pkey[h] = k, b->pval[h] = b->nmerges + 1;
    b->merge[b->nmerges][0] = x, b->merge[b->nmerges][1] = y;
    b->nmerges++;
}

static void add_bytes(kbpe *b, size_t *pool_cap) {
    init_tables();
    for (uint32_t i = 0; i < 256; i++) {
        add_token(b, i, &id_byte[i], 1, pool_cap);
        token_find(b, &id_byte[i], 1, i);
    }
}

static bool set_specials(kbpe *b, const char *const *specials, uint32_t n, const char *where,
                         char *err, size_t errlen) {
    b->specials = xcalloc(n ? n : 1, sizeof *b->specials);
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(specials[i], specials[j]) == 0) {
                snprintf(err, errlen, "%s: special token '%s' listed twice", where, specials[i]);
                return false;
            }
        b->specials[b->nspecials++] = xstrdup(specials[i]);
    }
    if (!n || strcmp(specials[0], KBPE_EOT) != 0) {
        snprintf(err, errlen, "%s: the first special token must be %s", where, KBPE_EOT);
        return false;
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < b->nmerges; i++) h = fnv(b->merge[i], sizeof b->merge[i], h);
    for (uint32_t i = 0; i < n; i++) h = fnv(specials[i], strlen(specials[i]) + 1, h);
    b->hash = h;
    return true;
}

kbpe *kbpe_from_merges(const char *text, size_t tlen, const char *const *specials,
                       uint32_t nspecials, const char *where, char *err, size_t errlen) {
    init_tables();
    uint32_t lines = 0;
    for (size_t i = 0; i < tlen; i++) lines += text[i] == '\n';
    if (lines >= (1u << 24)) {
        snprintf(err, errlen, "%s: more than %u merges", where, 1u << 24);
        return NULL;
    }
    kbpe *b = bpe_alloc(lines + 1);
    size_t pool_cap = 0;
    add_bytes(b, &pool_cap);
    uint8_t *x = NULL, *y = NULL;
    size_t lineno = 0, i = 0;
    bool ok = true;
    while (ok && i < tlen) {
        const char *line = text + i, *nl = memchr(line, '\n', tlen - i);
        size_t n = nl ? (size_t)(nl - line) : tlen - i;
        i += n + (nl != NULL);
        lineno++;
        if (n && line[n - 1] == '\r') n--;
        if (n == 0 || (lineno == 1 && n >= 8 && memcmp(line, "#version", 8) == 0)) continue;
        const char *sp = memchr(line, ' ', n);
        x = xrealloc(x, n), y = xrealloc(y, n);
        uint32_t nx, ny;
        int64_t a = -1, c = -1;
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - line)) || sp == line ||
            sp + 1 == line + n) {
            snprintf(err, errlen, "%s:%zu: want two tokens 'A B' on a merge line", where, lineno);
            ok = false;
        } else if (!unmap(line, (size_t)(sp - line), x, &nx) ||
                   !unmap(sp + 1, n - (size_t)(sp + 1 - line), y, &ny)) {
            snprintf(err, errlen, "%s:%zu: '%.*s' is not written in GPT-2's byte characters", where,
                     lineno, (int)(n > 80 ? 80 : n), line);
            ok = false;
        } else if ((a = token_find(b, x, nx, -1)) < 0 || (c = token_find(b, y, ny, -1)) < 0) {
            snprintf(err, errlen, "%s:%zu: merge '%.*s' references the unknown token '%.*s'", where,
                     lineno, (int)(n > 80 ? 80 : n), line,
                     (int)(a < 0 ? sp - line : line + n - sp - 1), a < 0 ? line : sp + 1);
            ok = false;
        } else {
            uint8_t *xy = xmalloc((size_t)nx + ny);
            memcpy(xy, x, nx), memcpy(xy + nx, y, ny);
            bool dup = token_find(b, xy, nx + ny, -1) >= 0;
            free(xy);
            if (nx + ny > KBPE_MAX_TOKEN) {
                snprintf(err, errlen, "%s:%zu: a token longer than %d bytes", where, lineno,
                         KBPE_MAX_TOKEN);
                ok = false;
            } else if (dup) {
                snprintf(err, errlen, "%s:%zu: merge '%.*s' makes a token an earlier line made",
                         where, lineno, (int)(n > 80 ? 80 : n), line);
                ok = false;
            } else
                add_merge(b, (uint32_t)a, (uint32_t)c, &pool_cap);
        }
    }
    free(x), free(y);
    if (ok) ok = set_specials(b, specials, nspecials, where, err, errlen);
    if (!ok) {
        kbpe_free(b);
        return NULL;
    }
    return b;
}

static char *slurp(const char *path, size_t *n, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = xmalloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            if (cap >= (1u << 30)) break;
            buf = xrealloc(buf, cap *= 2);
        }
    }
    bool bad = ferror(f) || len >= (1u << 30);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: read error or larger than 1 GiB", path);
        free(buf);
        return NULL;
    }
    *n = len;
    return buf;
}

typedef struct {
    const char *name;
    int64_t id;
} special_entry;

static int by_id(const void *p, const void *q) {
    const special_entry *a = p, *b = q;
    return (a->id > b->id) - (a->id < b->id);
}

kbpe *kbpe_load(const char *dir, char *err, size_t errlen) {
    init_tables();
    char path[4096], epath[4096];
    snprintf(path, sizeof path, "%s/vocab.bpe", dir);
    snprintf(epath, sizeof epath, "%s/encoder.json", dir);
    size_t n, en;
    char *text = slurp(path, &n, err, errlen);
    if (!text) return NULL;
    char *etext = slurp(epath, &en, err, errlen);
    if (!etext) {
        free(text);
        return NULL;
    }
    const char *eot = KBPE_EOT;
    kbpe *b = kbpe_from_merges(text, n, &eot, 1, path, err, errlen);
    free(text);
    if (!b) {
        free(etext);
        return NULL;
    }
    char jerr[200];
    jval *j = json_parse(etext, en, 4, jerr, sizeof jerr);
    free(etext);
    if (!j || j->type != JSON_OBJ) {
        snprintf(err, errlen, "%s: %s", epath, j ? "not a JSON object" : jerr);
        json_free(j), kbpe_free(b);
        return NULL;
    }
    uint32_t nbase = kbpe_nbase(b), seen = 0, nsp = 0;
    special_entry *sp = xmalloc(xmul(j->n ? j->n : 1, sizeof *sp));
    uint8_t *buf = xmalloc(4096);
    size_t bufcap = 4096;
    bool ok = true;
    for (size_t i = 0; ok && i < j->n; i++) {
        const char *key = j->keys[i];
        size_t klen = j->keylens[i];
        uint64_t id;
        if (!json_u64(&j->items[i], &id) || id >= (1u << 24)) {
            snprintf(err, errlen, "%s: token '%.60s' has no id in 0..2^24", epath, key);
            ok = false;
            break;
        }
        if (klen > bufcap) buf = xrealloc(buf, bufcap = klen);
        uint32_t nb;
        int64_t want = unmap(key, klen, buf, &nb) ? token_find(b, buf, nb, -1) : -1;
        if (want < 0) {
            sp[nsp++] = (special_entry){key, (int64_t)id};
        } else if ((uint64_t)want != id) {
            snprintf(err, errlen,
                     "%s: token '%.60s' has id %llu, but %s gives it %lld (kiln reads GPT-2's "
                     "layout: 256 bytes, then the merges in order, then special tokens)",
                     epath, key, (unsigned long long)id, path, (long long)want);
            ok = false;
        } else
            seen++;
    }
    if (ok && seen != nbase) {
        snprintf(err, errlen, "%s: %u of the %u tokens %s makes are missing", epath, nbase - seen,
                 nbase, path);
        ok = false;
    }
    if (ok) {
        qsort(sp, nsp, sizeof *sp, by_id);
        for (uint32_t i = 0; ok && i < nsp; i++)
            if (sp[i].id != (int64_t)(nbase + i)) {
                snprintf(err, errlen,
                         "%s: '%.60s' (id %lld) is neither a token of %s nor a special token "
                         "numbered after them (%u..)",
                         epath, sp[i].name, (long long)sp[i].id, path, nbase);
                ok = false;
            }
        if (ok && (nsp == 0 || strcmp(sp[0].name, KBPE_EOT) != 0)) {
            snprintf(err, errlen,
                     "%s: '%.60s' (id %u) is not a token %s makes, and the first special token "
                     "must be %s",
                     epath, nsp ? sp[0].name : "", nbase, path, KBPE_EOT);
            ok = false;
        }
    }
    if (ok) {
        const char **names = xmalloc(xmul(nsp, sizeof *names));
        for (uint32_t i = 0; i < nsp; i++) names[i] = sp[i].name;
        for (uint32_t i = 0; i < b->nspecials; i++) free(b->specials[i]);
        free(b->specials);
        b->nspecials = 0;
        ok = set_specials(b, names, nsp, epath, err, errlen);
        free(names);
    }
    free(sp), free(buf);
    json_free(j);
    if (!ok) {
        kbpe_free(b);
        return NULL;
    }
    return b;
}

/* A token's bytes written with bytes_to_unicode, as UTF-8, into out (4 * len + 1 bytes). */
static size_t token_string(const kbpe *b, uint32_t id, char *out) {
    size_t k = 0;
    for (uint32_t i = 0; i < b->len[id]; i++) {
        uint16_t cp = byte_cp[b->pool[b->off[id] + i]];
        if (cp < 0x80)
            out[k++] = (char)cp;
        else {
            out[k++] = (char)(0xc0 | cp >> 6);
            out[k++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    out[k] = 0;
    return k;
}

char *kbpe_merges_text(const kbpe *b, size_t *len) {
    size_t cap = 64, n = 0;
    for (uint32_t i = 0; i < b->nmerges; i++)
        cap += 2 * ((size_t)b->len[b->merge[i][0]] + b->len[b->merge[i][1]]) + 2;
    char *out = xmalloc(cap);
    for (uint32_t i = 0; i < b->nmerges; i++) {
        n += token_string(b, b->merge[i][0], out + n);
        out[n++] = ' ';
        n += token_string(b, b->merge[i][1], out + n);
        out[n++] = '\n';
    }
    out[n] = 0;
    *len = n;
    return out;
}

bool kbpe_save(const kbpe *b, const char *dir, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/vocab.bpe", dir);
    FILE *f = fopen(path, "w");
    size_t n;
    char *text = kbpe_merges_text(b, &n);
    bool ok = f && fputs("#version: 0.2\n", f) >= 0 && fwrite(text, 1, n, f) == n;
    free(text);
    if (f && fclose(f) != 0) ok = false;
    if (!ok) {
        snprintf(err, errlen, "%s: cannot write (%s)", path, strerror(errno));
        return false;
    }
    snprintf(path, sizeof path, "%s/encoder.json", dir);
    f = fopen(path, "w");
    char *s = xmalloc((size_t)b->maxlen * 2 + 1);
    ok = f != NULL;
    for (uint32_t id = 0; ok && id < kbpe_nbase(b); id++) {
        fputs(id ? ", " : "{", f);
        json_put_str(f, s, token_string(b, id, s));
        fprintf(f, ": %u", id);
    }
    for (uint32_t i = 0; ok && i < b->nspecials; i++) {
        fputs(", ", f);
        json_put_str(f, b->specials[i], strlen(b->specials[i]));
        fprintf(f, ": %u", kbpe_nbase(b) + i);
    }
    free(s);
    if (ok) ok = fputs("}", f) >= 0 && !ferror(f);
    if (f && fclose(f) != 0) ok = false;
    if (!ok) snprintf(err, errlen, "%s: cannot write (%s)", path, strerror(errno));
    return ok;
}

uint32_t kbpe_nmerges(const kbpe *b) {
    return b->nmerges;
}
uint32_t kbpe_nbase(const kbpe *b) {
    return 256 + b->nmerges;
}
uint32_t kbpe_nspecials(const kbpe *b) {
    return b->nspecials;
}
const char *kbpe_special(const kbpe *b, uint32_t i) {
    return i < b->nspecials ? b->specials[i] : NULL;
}
int64_t kbpe_special_id(const kbpe *b, const char *name) {
    for (uint32_t i = 0; i < b->nspecials; i++)
        if (strcmp(b->specials[i], name) == 0) return (int64_t)kbpe_nbase(b) + i;
    return -1;
}
uint64_t kbpe_hash(const kbpe *b) {
    return b->hash;
}
uint32_t kbpe_max_bytes(const kbpe *b) {
    return b->maxlen;
}

const uint8_t *kbpe_token_bytes(const kbpe *b, uint32_t id, uint32_t *len) {
    if (id >= kbpe_nbase(b)) {
        *len = 0;
        return NULL;
    }
    *len = b->len[id];
    return b->pool + b->off[id];
}

/* ---- encoding and decoding -------------------------------------------------------------- */

/* BPE over one piece's byte ids in sym[0..n): the lowest-ranked merge, leftmost first. */
static size_t merge_piece(const kbpe *b, int32_t *sym, size_t n, uint32_t *rank) {
    if (n < 2) return n;
    for (size_t i = 0; i + 1 < n; i++)
        rank[i] = pair_rank(b, (uint32_t)sym[i], (uint32_t)sym[i + 1]);
    for (;;) {
        uint32_t best = UINT32_MAX;
        size_t at = 0;
        for (size_t i = 0; i + 1 < n; i++)
            if (rank[i] < best) best = rank[i], at = i;
        if (best == UINT32_MAX) return n;
        sym[at] = (int32_t)(256 + best);
        memmove(sym + at + 1, sym + at + 2, (n - at - 2) * sizeof *sym);
        if (at + 3 <= n) memmove(rank + at + 1, rank + at + 2, (n - at - 3) * sizeof *rank);
        n--;
        if (at > 0) rank[at - 1] = pair_rank(b, (uint32_t)sym[at - 1], (uint32_t)sym[at]);
        if (at + 1 < n) rank[at] = pair_rank(b, (uint32_t)sym[at], (uint32_t)sym[at + 1]);
        if (n < 2) return n;
    }
}

size_t kbpe_encode(const kbpe *b, const uint8_t *s, size_t n, int32_t *out) {
    size_t k = 0, i = 0, cap = 256;
    uint32_t *rank = xmalloc(cap * sizeof *rank);
    while (i < n) {
        size_t e = kbpe_split_next(s, n, i);
        size_t len = e - i;
        if (len > cap) rank = xrealloc(rank, xmul(cap = len, sizeof *rank));
        for (size_t j = 0; j < len; j++) out[k + j] = byte_id[s[i + j]];
        k += merge_piece(b, out + k, len, rank);
        i = e;
    }
    free(rank);
    return k;
}

size_t kbpe_decode(const kbpe *b, const int32_t *ids, size_t n, uint8_t *out) {
    size_t k = 0;
    uint32_t nbase = kbpe_nbase(b);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= nbase) continue;
        memcpy(out + k, b->pool + b->off[ids[i]], b->len[ids[i]]);
        k += b->len[ids[i]];
    }
    return k;
}

/* ---- learning --------------------------------------------------------------------------- */

/* Distinct pieces with their counts; then, while learning, each as a word of token ids. */
struct kbpe_learner {
    uint8_t *pool;
    size_t pool_len, pool_cap;
    uint64_t *off; /* piece i: pool[off[i] .. off[i] + len[i]) */
    uint32_t *len;
    uint64_t *count;
    size_t n, cap;
    uint32_t *slot; /* hash: piece index + 1 */
    size_t scap;
    uint64_t total;
};

kbpe_learner *kbpe_learner_new(void) {
    kbpe_learner *l = xcalloc(1, sizeof *l);
    l->scap = 1 << 12;
    l->slot = xcalloc(l->scap, sizeof *l->slot);
    return l;
}

void kbpe_learner_free(kbpe_learner *l) {
    if (!l) return;
    free(l->pool), free(l->off), free(l->len), free(l->count), free(l->slot);
    free(l);
}

static uint64_t piece_hash(const uint8_t *s, size_t n) {
    return mix(fnv(s, n, 0xcbf29ce484222325ull));
}

static void learner_grow(kbpe_learner *l) {
    free(l->slot);
    l->scap *= 2;
    l->slot = xcalloc(l->scap, sizeof *l->slot);
    for (size_t i = 0; i < l->n; i++) {
        size_t h = piece_hash(l->pool + l->off[i], l->len[i]) & (l->scap - 1);
        while (l->slot[h]) h = (h + 1) & (l->scap - 1);
        l->slot[h] = (uint32_t)i + 1;
    }
}

static void learner_count(kbpe_learner *l, const uint8_t *s, size_t n) {
    if (n > KBPE_MAX_TOKEN) n = KBPE_MAX_TOKEN; /* a longer piece's tail adds no new token */
    size_t h = piece_hash(s, n) & (l->scap - 1);
    for (;; h = (h + 1) & (l->scap - 1)) {
        uint32_t v = l->slot[h];
        if (!v) break;
        if (l->len[v - 1] == n && memcmp(l->pool + l->off[v - 1], s, n) == 0) {
            l->count[v - 1]++;
            return;
        }
    }
    if (l->n >= UINT32_MAX - 1) return; /* more distinct pieces than ids: counted no more */
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->off = xrealloc(l->off, xmul(l->cap, sizeof *l->off));
        l->len = xrealloc(l->len, xmul(l->cap, sizeof *l->len));
        l->count = xrealloc(l->count, xmul(l->cap, sizeof *l->count));
    }
    if (l->pool_len + n > l->pool_cap) {
        l->pool_cap = (l->pool_cap + n) * 2;
        l->pool = xrealloc(l->pool, l->pool_cap);
    }
    memcpy(l->pool + l->pool_len, s, n);
    l->off[l->n] = l->pool_len, l->len[l->n] = (uint32_t)n, l->count[l->n] = 1;
    l->pool_len += n;
    l->slot[h] = (uint32_t)++l->n;
    if (l->n * 2 > l->scap) learner_grow(l);
}

void kbpe_learner_add(kbpe_learner *l, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t e = kbpe_split_next(s, n, i);
        learner_count(l, s + i, e - i);
        l->total++;
        i = e;
    }
}

void kbpe_learner_counts(const kbpe_learner *l, uint64_t *distinct, uint64_t *total) {
    *distinct = l->n, *total = l->total;
}

/* Pair counts: an open-addressed table (a, b) -> count, rebuilt when it fills. */
typedef struct {
    uint64_t *key;
    int64_t *cnt;
    uint8_t *used;
    size_t cap, used_n;
} pairtab;

static void pt_init(pairtab *p, size_t cap) {
    p->cap = cap, p->used_n = 0;
    p->key = xmalloc(xmul(cap, sizeof *p->key));
    p->cnt = xmalloc(xmul(cap, sizeof *p->cnt));
    p->used = xcalloc(cap, 1);
}

static void pt_free(pairtab *p) {
    free(p->key), free(p->cnt), free(p->used);
}

static void pt_add(pairtab *p, uint64_t k, int64_t c);

static void pt_rehash(pairtab *p) {
    pairtab old = *p;
    size_t live = 0;
    for (size_t i = 0; i < old.cap; i++) live += old.used[i] && old.cnt[i] != 0;
    pt_init(p, pow2_above(2 * live + 1024));
    for (size_t i = 0; i < old.cap; i++)
        if (old.used[i] && old.cnt[i] != 0) pt_add(p, old.key[i], old.cnt[i]);
    pt_free(&old);
}

static void pt_add(pairtab *p, uint64_t k, int64_t c) {
    size_t h = mix(k) & (p->cap - 1);
    while (p->used[h] && p->key[h] != k) h = (h + 1) & (p->cap - 1);
    if (!p->used[h]) {
        p->used[h] = 1, p->key[h] = k, p->cnt[h] = 0;
        if (++p->used_n * 2 > p->cap) {
            p->cnt[h] = c;
            pt_rehash(p);
            return;
        }
    }
    p->cnt[h] += c;
}

static inline uint64_t pkey(int32_t a, int32_t b) {
    return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

kbpe *kbpe_learn(kbpe_learner *l, uint32_t vocab, const char *const *specials, uint32_t nspecials,
                 char *err, size_t errlen) {
    init_tables();
    uint32_t ns = 1; /* <|endoftext|>, then the others */
    for (uint32_t i = 0; i < nspecials; i++) ns += strcmp(specials[i], KBPE_EOT) != 0;
    if (vocab < 256 + ns || vocab > (1u << 24)) {
        snprintf(err, errlen, "a vocabulary of %u cannot hold the 256 bytes and %u special tokens",
                 vocab, ns);
        return NULL;
    }
    uint32_t want = vocab - 256 - ns;
    kbpe *b = bpe_alloc(want);
    size_t pool_cap = 0;
    add_bytes(b, &pool_cap);
    /* words: every distinct piece as ids, one after another; wlen[i] symbols at wstart[i] */
    int32_t *sym = xmalloc(xmul(l->pool_len ? l->pool_len : 1, sizeof *sym));
    uint32_t *wlen = xmalloc(xmul(l->n ? l->n : 1, sizeof *wlen));
    for (size_t i = 0; i < l->pool_len; i++) sym[i] = byte_id[l->pool[i]];
    for (size_t i = 0; i < l->n; i++) wlen[i] = l->len[i];
    pairtab pt;
    pt_init(&pt, 1 << 16);
    for (size_t w = 0; w < l->n; w++) {
        int32_t *s = sym + l->off[w];
        for (uint32_t j = 0; j + 1 < wlen[w]; j++)
            pt_add(&pt, pkey(s[j], s[j + 1]), (int64_t)l->count[w]);
    }
    while (b->nmerges < want) {
        /* the most frequent pair; ties to the smaller (a, b), so the result is deterministic */
        int64_t best = 0;
        uint64_t bk = 0;
        for (size_t i = 0; i < pt.cap; i++) {
            if (!pt.used[i] || pt.cnt[i] < best || (pt.cnt[i] == best && pt.key[i] > bk)) continue;
            uint32_t a = (uint32_t)(pt.key[i] >> 32), c = (uint32_t)pt.key[i];
            if (b->len[a] + b->len[c] > KBPE_MAX_TOKEN) continue;
            best = pt.cnt[i], bk = pt.key[i];
        }
        if (best < 2) break; /* nothing repeats: merging more would only memorise */
        int32_t a = (int32_t)(bk >> 32), c = (int32_t)(uint32_t)bk,
                id = (int32_t)(256 + b->nmerges);
        add_merge(b, (uint32_t)a, (uint32_t)c, &pool_cap);
        for (size_t w = 0; w < l->n; w++) {
            int32_t *s = sym + l->off[w];
            uint32_t n = wlen[w], k = 0;
            int64_t cnt = (int64_t)l->count[w];
            bool hit = false;
            for (uint32_t j = 0; j + 1 < n; j++)
                if (s[j] == a && s[j + 1] == c) hit = true;
            if (!hit) continue;
            for (uint32_t j = 0; j + 1 < n; j++) pt_add(&pt, pkey(s[j], s[j + 1]), -cnt);
            for (uint32_t j = 0; j < n; j++) {
                if (j + 1 < n && s[j] == a && s[j + 1] == c)
                    s[k++] = id, j++;
                else
                    s[k++] = s[j];
            }
            wlen[w] = k;
            for (uint32_t j = 0; j + 1 < k; j++) pt_add(&pt, pkey(s[j], s[j + 1]), cnt);
        }
    }
    pt_free(&pt);
    free(sym), free(wlen);
    const char **names = xmalloc(xmul(nspecials + 1, sizeof *names));
    ns = 0;
    names[ns++] = KBPE_EOT;
    for (uint32_t i = 0; i < nspecials; i++)
        if (strcmp(specials[i], KBPE_EOT) != 0) names[ns++] = specials[i];
    bool ok = set_specials(b, names, ns, "kbpe_learn", err, errlen);
    free(names);
    if (!ok) {
        kbpe_free(b);
        return NULL;
    }
    return b;
}
