/* json — strict recursive-descent parser and writer helpers (see json.h). */
#include "data/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "data/text.h"
#include "core/util.h"
#include "stream/mpscan.h"

typedef struct {
    const unsigned char *p; /* the text */
    size_t n, pos;
    int max_depth;
    char *err;
    size_t errsz;
    bool failed;
} parser;

static bool fail(parser *ps, const char *fmt, ...) KILN_PRINTF(2, 3);
static bool fail(parser *ps, const char *fmt, ...) {
    if (ps->failed) return false; /* keep the first, innermost message */
    ps->failed = true;
    if (ps->err && ps->errsz) {
        char what[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        snprintf(ps->err, ps->errsz, "%s at byte %zu", what, ps->pos);
    }
    return false;
}

static void skip_ws(parser *ps) {
    while (ps->pos < ps->n) {
        unsigned char c = ps->p[ps->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        ps->pos++;
    }
}

static int peek(const parser *ps) {
    return ps->pos < ps->n ? ps->p[ps->pos] : -1;
}

static bool literal(parser *ps, const char *word) {
    size_t k = strlen(word);
    if (ps->n - ps->pos < k || memcmp(ps->p + ps->pos, word, k) != 0)
        return fail(ps, "invalid literal");
    ps->pos += k;
    return true;
}

/* ---- strings ---------------------------------------------------------------------------- */

/* Growable byte buffer for decoded strings. */
typedef struct {
    char *b;
    size_t len, cap;
} buf;

static void buf_put(buf *b, const void *src, size_t k) {
    if (b->len + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + k + 1) cap = xmul(cap, 2);
        b->b = xrealloc(b->b, cap);
        b->cap = cap;
    }
    memcpy(b->b + b->len, src, k);
    b->len += k;
    b->b[b->len] = '\0';
}

static size_t utf8_encode(uint32_t cp, unsigned char out[4]) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Bytes of the valid UTF-8 sequence at s, 0 when invalid (lib/text decides). */
static size_t utf8_valid(const unsigned char *s, size_t n) {
    size_t bad;
    return ktext_utf8_seq(s, n, &bad);
}

static bool hex4(parser *ps, uint32_t *out) {
    if (ps->n - ps->pos < 4) return fail(ps, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = ps->p[ps->pos + (size_t)i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return fail(ps, "invalid \\u escape");
        v = v << 4 | (uint32_t)d;
    }
    ps->pos += 4;
    *out = v;
    return true;
}

/* A \uXXXX escape (the backslash and 'u' already consumed), surrogate pairs joined. */
static bool unicode_escape(parser *ps, buf *b) {
    size_t start = ps->pos - 2;
    uint32_t cp;
    if (!hex4(ps, &cp)) return false;
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        ps->pos = start;
        return fail(ps, "lone low surrogate in \\u escape");
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (ps->n - ps->pos < 2 || ps->p[ps->pos] != '\\' || ps->p[ps->pos + 1] != 'u') {
            ps->pos = start;
            return fail(ps, "lone high surrogate in \\u escape");
        }
        ps->pos += 2;
        if (!hex4(ps, &lo)) return false;
        if (lo < 0xdc00 || lo > 0xdfff) {
            ps->pos = start;
            return fail(ps, "high surrogate not followed by a low one");
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    unsigned char enc[4];
    buf_put(b, enc, utf8_encode(cp, enc));
    return true;
}

/* A string starting at the opening quote; the decoded bytes go to *out (malloc'd). */
static bool string(parser *ps, char **out, size_t *len) {
    buf b = {0};
    buf_put(&b, "", 0);
    ps->pos++; /* opening quote */
    for (;;) {
        if (ps->pos >= ps->n) {
            free(b.b);
            return fail(ps, "unterminated string");
        }
        /* Copy the longest run of plain bytes at once. */
        size_t run = ps->pos;
        while (run < ps->n && ps->p[run] >= 0x20 && ps->p[run] < 0x80 && ps->p[run] != '"' &&
               ps->p[run] != '\\')
            run++;
        buf_put(&b, ps->p + ps->pos, run - ps->pos);
        ps->pos = run;
        if (ps->pos >= ps->n) continue;
        unsigned char c = ps->p[ps->pos];
        if (c == '"') {
            ps->pos++;
            *out = b.b;
            *len = b.len;
            return true;
        }
        bool ok = true;
        if (c < 0x20) {
            ok = fail(ps, "control character 0x%02x in string (escape it)", c);
        } else if (c >= 0x80) {
            size_t k = utf8_valid(ps->p + ps->pos, ps->n - ps->pos);
            if (!k)
                ok = fail(ps, "invalid UTF-8 in string");
            else {
                buf_put(&b, ps->p + ps->pos, k);
                ps->pos += k;
            }
        } else { /* backslash */
            if (ps->pos + 1 >= ps->n) {
                ps->pos++;
                ok = fail(ps, "unterminated string");
            } else {
                unsigned char e = ps->p[ps->pos + 1];
                const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
                const char *hit = e ? strchr(from, e) : NULL;
                if (hit) {
                    buf_put(&b, to + (hit - from), 1);
                    ps->pos += 2;
                } else if (e == 'u') {
                    ps->pos += 2;
                    ok = unicode_escape(ps, &b);
                } else {
                    ok = fail(ps, "invalid escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
                }
            }
        }
        if (!ok) {
            free(b.b);
            return false;
        }
    }
}

/* ---- numbers ---------------------------------------------------------------------------- */

static bool is_digit(int c) {
    return c >= '0' && c <= '9';
}

static bool number(parser *ps, jval *v) {
    size_t start = ps->pos, i = ps->pos;
    bool neg = false, integer = true;
    if (i < ps->n && ps->p[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= ps->n || !is_digit(ps->p[i])) {
        ps->pos = i;
        return fail(ps, "invalid number");
    }
    if (ps->p[i] == '0' && i + 1 < ps->n && is_digit(ps->p[i + 1])) {
        ps->pos = i;
        return fail(ps, "leading zero in number");
    }
    while (i < ps->n && is_digit(ps->p[i])) i++;
    if (i < ps->n && ps->p[i] == '.') {
        integer = false;
        i++;
        if (i >= ps->n || !is_digit(ps->p[i])) {
            ps->pos = i;
            return fail(ps, "digit expected after '.'");
        }
        while (i < ps->n && is_digit(ps->p[i])) i++;
    }
    if (i < ps->n && (ps->p[i] == 'e' || ps->p[i] == 'E')) {
        integer = false;
        i++;
        if (i < ps->n && (ps->p[i] == '+' || ps->p[i] == '-')) i++;
        if (i >= ps->n || !is_digit(ps->p[i])) {
            ps->pos = i;
            return fail(ps, "digit expected in exponent");
        }
        while (i < ps->n && is_digit(ps->p[i])) i++;
    }

    if (integer) { /* exact: accumulate with overflow checks, no strtod rounding */
        uint64_t mag = 0;
        for (size_t k = start + neg; k < i; k++)
            if (__builtin_mul_overflow(mag, 10, &mag) ||
                __builtin_add_overflow(mag, (uint64_t)(ps->p[k] - '0'), &mag))
                return fail(ps, "integer out of 64-bit range");
        if (neg) {
            if (mag > (uint64_t)INT64_MAX + 1) return fail(ps, "integer out of 64-bit range");
            v->type = JSON_INT;
            v->i = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
        } else if (mag > (uint64_t)INT64_MAX) {
            v->type = JSON_UINT;
            v->u = mag;
        } else {
            v->type = JSON_INT;
            v->i = (int64_t)mag;
        }
        ps->pos = i;
        return true;
    }

    /* strtod needs a NUL-terminated copy; the grammar above already checked the syntax,
     * and kiln never calls setlocale, so the decimal point is '.'. */
    char small[64], *copy = small;
    size_t k = i - start;
    if (k >= sizeof small) copy = xmalloc(k + 1);
    memcpy(copy, ps->p + start, k);
    copy[k] = '\0';
    errno = 0;
    double d = strtod(copy, NULL);
    if (copy != small) free(copy);
    if (isinf(d)) return fail(ps, "number out of double range");
    v->type = JSON_REAL;
    v->d = d;
    ps->pos = i;
    return true;
}

/* ---- values ----------------------------------------------------------------------------- */

static void free_contents(jval *v);
static bool value(parser *ps, jval *v, int depth);

static void grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap * 2 : 4;
    if (c < need) c = need;
    *p = xrealloc(*p, xmul(c, elem));
    *cap = c;
}

static bool array(parser *ps, jval *v, int depth) {
    size_t cap = 0;
    v->type = JSON_ARR;
    ps->pos++; /* [ */
    skip_ws(ps);
    if (peek(ps) == ']') {
        ps->pos++;
        return true;
    }
    for (;;) {
        grow((void **)&v->items, &cap, v->n + 1, sizeof *v->items);
        memset(&v->items[v->n], 0, sizeof *v->items);
        v->n++;
        if (!value(ps, &v->items[v->n - 1], depth + 1)) return false;
        skip_ws(ps);
        int c = peek(ps);
        if (c == ',') {
            ps->pos++;
            continue;
        }
        if (c == ']') {
            ps->pos++;
            return true;
        }
        return fail(ps, c < 0 ? "unterminated array" : "',' or ']' expected");
    }
}

typedef struct {
    const char *k;
    size_t n;
} keyref;

static int keyref_cmp(const void *a, const void *b) {
    const keyref *x = a, *y = b;
    size_t m = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->k, y->k, m);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Duplicate keys make an object ambiguous (which one wins differs between readers). */
static const char *duplicate_key(const jval *v) {
    if (v->n < 2) return NULL;
    keyref *r = xmalloc(xmul(v->n, sizeof *r));
    for (size_t i = 0; i < v->n; i++) r[i] = (keyref){v->keys[i], v->keylens[i]};
    qsort(r, v->n, sizeof *r, keyref_cmp);
    const char *dup = NULL;
    for (size_t i = 1; i < v->n && !dup; i++)
        if (keyref_cmp(&r[i - 1], &r[i]) == 0) dup = r[i].k;
    free(r);
    return dup;
}

static bool object(parser *ps, jval *v, int depth) {
    size_t cap_items = 0, cap_keys = 0, cap_lens = 0;
    v->type = JSON_OBJ;
    ps->pos++; /* { */
    skip_ws(ps);
    if (peek(ps) == '}') {
        ps->pos++;
        return true;
    }
    for (;;) {
        skip_ws(ps);
        if (peek(ps) != '"') return fail(ps, peek(ps) < 0 ? "unterminated object" : "key expected");
        grow((void **)&v->items, &cap_items, v->n + 1, sizeof *v->items);
        grow((void **)&v->keys, &cap_keys, v->n + 1, sizeof *v->keys);
        grow((void **)&v->keylens, &cap_lens, v->n + 1, sizeof *v->keylens);
        memset(&v->items[v->n], 0, sizeof *v->items);
        v->keys[v->n] = NULL;
        v->n++;
        if (!string(ps, &v->keys[v->n - 1], &v->keylens[v->n - 1])) return false;
        skip_ws(ps);
        if (peek(ps) != ':') return fail(ps, "':' expected after key");
        ps->pos++;
        if (!value(ps, &v->items[v->n - 1], depth + 1)) return false;
        skip_ws(ps);
        int c = peek(ps);
        if (c == ',') {
            ps->pos++;
            continue;
        }
        if (c == '}') {
            ps->pos++;
            const char *dup = duplicate_key(v);
            if (dup) return fail(ps, "duplicate key \"%.40s\" in object", dup);
            return true;
        }
        return fail(ps, c < 0 ? "unterminated object" : "',' or '}' expected");
    }
}

static bool value(parser *ps, jval *v, int depth) {
    skip_ws(ps);
    int c = peek(ps);
    if ((c == '[' || c == '{') && depth >= ps->max_depth)
        return fail(ps, "nesting deeper than %d", ps->max_depth);
    switch (c) {
    case -1:
        return fail(ps, "value expected, end of input");
    case '[':
        return array(ps, v, depth);
    case '{':
        return object(ps, v, depth);
    case '"':
        v->type = JSON_STR;
        return string(ps, &v->s, &v->len);
    case 't':
        v->type = JSON_BOOL;
        v->b = true;
        return literal(ps, "true");
    case 'f':
        v->type = JSON_BOOL;
        v->b = false;
        return literal(ps, "false");
    case 'n':
        v->type = JSON_NULL;
        return literal(ps, "null");
    default:
        if (c == '-' || is_digit(c)) return number(ps, v);
        return fail(ps, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
    }
}

jval *json_parse(const char *text, size_t n, int max_depth, char *err, size_t errsz) {
    parser ps = {(const unsigned char *)text,
                 n,
                 0,
                 max_depth < 1 ? JSON_DEFAULT_DEPTH : max_depth,
                 err,
                 errsz,
                 false};
    if (err && errsz) err[0] = '\0';
    jval *v = xcalloc(1, sizeof *v);
    bool ok = value(&ps, v, 0);
    if (ok) {
        skip_ws(&ps);
        if (ps.pos < n) ok = fail(&ps, "trailing characters after the value");
    }
    if (!ok) {
        json_free(v);
        return NULL;
    }
    return v;
}

static void free_contents(jval *v) {
    if (v->type == JSON_STR) free(v->s);
    if (v->type == JSON_ARR || v->type == JSON_OBJ) {
        for (size_t i = 0; i < v->n; i++) {
            free_contents(&v->items[i]);
            if (v->keys) free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
        free(v->keylens);
    }
}

void json_free(jval *v) {
    if (!v) return;
    free_contents(v);
    free(v);
}

const jval *json_get(const jval *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJ) return NULL;
    size_t k = strlen(key);
    for (size_t i = 0; i < obj->n; i++)
        if (obj->keylens[i] == k && memcmp(obj->keys[i], key, k) == 0) return &obj->items[i];
    return NULL;
}

double json_num(const jval *v) {
    if (!v) return NAN;
    switch (v->type) {
    case JSON_INT:
        return (double)v->i;
    case JSON_UINT:
        return (double)v->u;
    case JSON_REAL:
        return v->d;
    default:
        return NAN;
    }
}

bool json_u64(const jval *v, uint64_t *out) {
    if (v && v->type == JSON_UINT) {
        *out = v->u;
        return true;
    }
    if (v && v->type == JSON_INT && v->i >= 0) {
        *out = (uint64_t)v->i;
        return true;
    }
    return false;
}

bool json_i64(const jval *v, int64_t *out) {
    if (v && v->type == JSON_INT) {
        *out = v->i;
        return true;
    }
    return false;
}

/* ---- writing ---------------------------------------------------------------------------- */

void json_put_str(FILE *f, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t k = utf8_valid(p + i, n - i);
            if (k)
                fwrite(p + i, 1, k, f);
            else
                fputs("\xef\xbf\xbd", f); /* U+FFFD: see json.h */
            i += k ? k : 1;
            continue;
        }
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        case '\b':
            fputs("\\b", f);
            break;
        case '\f':
            fputs("\\f", f);
            break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}

void json_format_real(char *out, size_t outsize, double d) {
    if (!isfinite(d)) {
        snprintf(out, outsize, "null");
        return;
    }
    /* %.15g is exact for every double whose shortest form has <= 15 digits (and strips
     * trailing zeros), so only 16 and 17 remain to try. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, outsize, "%.*g", prec, d);
        if (strtod(out, NULL) == d) break;
    }
    if (!strpbrk(out, ".eE")) {
        size_t k = strlen(out);
        if (k + 3 <= outsize) memcpy(out + k, ".0", 3);
    }
}

void json_put_real(FILE *f, double d) {
    char b[40];
    json_format_real(b, sizeof b, d);
    fputs(b, f);
}

void json_pack(msgpack_packer *pk, const jval *v) {
    switch (v->type) {
    case JSON_NULL:
        msgpack_pack_nil(pk);
        break;
    case JSON_BOOL:
        v->b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case JSON_INT:
        msgpack_pack_int64(pk, v->i);
        break;
    case JSON_UINT:
        msgpack_pack_uint64(pk, v->u);
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, v->d);
        break;
    case JSON_STR:
        msgpack_pack_str(pk, v->len);
        msgpack_pack_str_body(pk, v->s, v->len);
        break;
    case JSON_ARR:
        msgpack_pack_array(pk, v->n);
        for (size_t i = 0; i < v->n; i++) json_pack(pk, &v->items[i]);
        break;
    case JSON_OBJ:
        msgpack_pack_map(pk, v->n);
        for (size_t i = 0; i < v->n; i++) {
            msgpack_pack_str(pk, v->keylens[i]);
            msgpack_pack_str_body(pk, v->keys[i], v->keylens[i]);
            json_pack(pk, &v->items[i]);
        }
        break;
    }
}

static bool fits(const jval *v, int depth, size_t extra, char *err, size_t errsz) {
    if (v->type != JSON_ARR && v->type != JSON_OBJ) return true;
    if (depth > KILN_MAX_DEPTH)
        return kiln_errf(err, errsz, 0, "nested deeper than a record allows (%d levels)",
                         KILN_MAX_DEPTH - 1),
               false;
    if (v->n + extra > KILN_MAX_CONTAINER)
        return kiln_errf(err, errsz, 0, "%s of %zu entries: a record allows %zu",
                         v->type == JSON_ARR ? "an array" : "an object", v->n,
                         (size_t)KILN_MAX_CONTAINER - extra),
               false;
    if (v->type == JSON_OBJ && v->n == 3 && json_get(v, "dtype") && json_get(v, "shape") &&
        json_get(v, "data"))
        return kiln_errf(err, errsz, 0,
                         "an object shaped like a tensor {dtype, shape, data}: records hold "
                         "tensors as binary data, which JSON lines cannot give"),
               false;
    for (size_t i = 0; i < v->n; i++)
        if (!fits(&v->items[i], depth + 1, 0, err, errsz)) return false;
    return true;
}

bool json_fits_record(const jval *v, size_t extra_fields, char *err, size_t errsz) {
    return fits(v, 1, extra_fields, err, errsz);
}
