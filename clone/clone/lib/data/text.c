/* text — UTF-8 validation (a table-free decoder) and the splitters. */
#include "data/text.h"

#include "core/util.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if s starts an invalid one.  For
 * an invalid sequence, *bad gets the length of its maximal subpart (at least 1). */
size_t ktext_utf8_seq(const uint8_t *s, size_t n, size_t *bad) {
    uint8_t c = s[0];
    *bad = 1;
    if (c < 0x80) return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (i >= n) return 0;
        uint8_t b = s[i];
        bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        if (!ok) return 0;
        *bad = i + 1 < len ? i + 1 : len; /* the valid prefix so far is one subpart */
    }
    return len;
}

size_t ktext_utf8_check(const uint8_t *s, size_t n) {
    size_t i = 0, bad;
    while (i < n) {
        if (s[i] < 0x80) { /* fast path for ASCII runs */
            i++;
            continue;
        }
        size_t k = ktext_utf8_seq(s + i, n - i, &bad);
        if (!k) return i;
        i += k;
    }
    return n;
}

uint8_t *ktext_utf8_repair(const uint8_t *s, size_t n, size_t *outlen) {
    /* Worst case every byte becomes 3 bytes of U+FFFD. */
    uint8_t *out = xmalloc(xmul(n, 3) + 1), *o = out;
    size_t i = 0, bad;
    while (i < n) {
        size_t k = ktext_utf8_seq(s + i, n - i, &bad);
        if (k) {
            memcpy(o, s + i, k);
            o += k, i += k;
        } else {
            *o++ = 0xEF, *o++ = 0xBF, *o++ = 0xBD;
            i += bad < n - i ? bad : n - i;
        }
    }
    *outlen = (size_t)(o - out);
    *o = 0;
    return out;
}

bool ksplit_parse(const char *spec, ksplit *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    uint64_t n;
    if (strcmp(spec, "docs") == 0)
        out->kind = KSPLIT_DOCS;
    else if (strcmp(spec, "lines") == 0)
        out->kind = KSPLIT_LINES;
    else if (strcmp(spec, "paragraphs") == 0)
        out->kind = KSPLIT_PARAGRAPHS;
    else if (strncmp(spec, "sep:", 4) == 0 && spec[4] && strlen(spec + 4) < sizeof out->sep &&
             !strchr(spec + 4, '\n')) {
        out->kind = KSPLIT_SEP;
        strcpy(out->sep, spec + 4);
    } else if (strncmp(spec, "chunk:", 6) == 0 && parse_u64(spec + 6, &n) && n >= 1) {
        out->kind = KSPLIT_CHUNK;
        out->chunk = (size_t)n;
    } else {
        snprintf(err, errlen, "--split wants docs, lines, paragraphs, sep:STR or chunk:N, not '%s'",
                 spec);
        return false;
    }
    return true;
}

/* The line at *pos: [start, end) without its "\n" or "\r\n"; *pos moves past it. */
static void next_line(const uint8_t *s, size_t n, size_t *pos, size_t *start, size_t *end) {
    *start = *pos;
    const uint8_t *nl = memchr(s + *pos, '\n', n - *pos);
    size_t e = nl ? (size_t)(nl - s) : n;
    *pos = nl ? e + 1 : n;
    if (e > *start && s[e - 1] == '\r') e--;
    *end = e;
}

static bool blank(const uint8_t *s, size_t a, size_t b) {
    for (size_t i = a; i < b; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

bool ksplit_next(const ksplit *sp, const uint8_t *s, size_t n, size_t *pos, size_t *start,
                 size_t *len) {
    size_t a, b;
    switch (sp->kind) {
    case KSPLIT_DOCS:
        if (*pos >= n) return false;
        *start = 0, *len = n, *pos = n;
        return n > 0;
    case KSPLIT_LINES:
        while (*pos < n) {
            next_line(s, n, pos, &a, &b);
            if (b > a) return *start = a, *len = b - a, true;
        }
        return false;
    case KSPLIT_PARAGRAPHS:
    case KSPLIT_SEP: {
        /* A run of lines up to a separator: a blank line, or a line equal to sep. */
        size_t seplen = strlen(sp->sep);
        bool para = sp->kind == KSPLIT_PARAGRAPHS;
        while (*pos < n) {
            size_t first = SIZE_MAX, last = 0;
            while (*pos < n) {
                next_line(s, n, pos, &a, &b);
                bool is_sep = para ? blank(s, a, b)
                                   : (b - a == seplen && memcmp(s + a, sp->sep, seplen) == 0);
                if (is_sep) break;
                if (first == SIZE_MAX) first = a;
                last = b;
            }
            /* Separated pieces keep blank lines inside, but not at their edges. */
            if (first != SIZE_MAX) {
                while (first < last && (s[first] == '\n' || s[first] == '\r')) first++;
                while (last > first && (s[last - 1] == '\n' || s[last - 1] == '\r')) last--;
                if (last > first) return *start = first, *len = last - first, true;
            }
        }
        return false;
    }
    case KSPLIT_CHUNK: {
        if (*pos >= n) return false;
        size_t end = n - *pos > sp->chunk ? *pos + sp->chunk : n;
        /* Back up to a character start; if the chunk is smaller than one character, take
         * the whole character rather than cut it. */
        size_t e = end;
        while (e > *pos && e < n && (s[e] & 0xC0) == 0x80) e--;
        if (e == *pos) {
            e = end;
            while (e < n && (s[e] & 0xC0) == 0x80) e++;
        }
        *start = *pos, *len = e - *pos, *pos = e;
        return true;
    }
    }
    return false;
}
