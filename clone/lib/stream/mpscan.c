/* mpscan — bounded structural walk of one MessagePack object. */
#include "stream/mpscan.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/util.h"

typedef struct {
    const uint8_t *p;
    size_t avail, pos, need;
    uint64_t objects;
    const mpscan_limits *lim;
    char *why;
    size_t whysz;
} scanner;

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Ensure n more bytes at pos; otherwise record the total needed. */
static mpscan_result want(scanner *s, uint64_t n) {
    uint64_t total = (uint64_t)s->pos + n;
    if (total > s->lim->max_bytes) {
        snprintf(s->why, s->whysz, "record needs at least %llu bytes, over the %zu-byte limit",
                 (unsigned long long)total, s->lim->max_bytes);
        s->need = s->pos;
        return MPSCAN_BAD;
    }
    if (total > s->avail) {
        s->need = (size_t)total;
        return MPSCAN_MORE;
    }
    return MPSCAN_OK;
}

static mpscan_result bad(scanner *s, const char *msg) {
    snprintf(s->why, s->whysz, "%s", msg);
    s->need = s->pos;
    return MPSCAN_BAD;
}

/* Skip a header of hdr bytes whose big-endian length field (lenbytes wide, right after
 * the type byte) gives a payload of that many bytes times unit. */
static mpscan_result skip_sized(scanner *s, int lenbytes, int extra) {
    mpscan_result r = want(s, 1 + (uint64_t)lenbytes);
    if (r != MPSCAN_OK) return r;
    uint64_t n = be(s->p + s->pos + 1, lenbytes) + (uint64_t)extra;
    r = want(s, 1 + (uint64_t)lenbytes + n);
    if (r != MPSCAN_OK) return r;
    s->pos += 1 + (size_t)lenbytes + (size_t)n;
    return MPSCAN_OK;
}

static mpscan_result scan_value(scanner *s, int depth);

static mpscan_result scan_container(scanner *s, int depth, int hdrlen, uint64_t count,
                                    int per_entry) {
    if (depth > s->lim->max_depth) return bad(s, "nesting deeper than the limit");
    if (count > s->lim->max_entries) {
        snprintf(s->why, s->whysz, "%s of %llu entries, over the limit of %u",
                 per_entry == 2 ? "map" : "array", (unsigned long long)count, s->lim->max_entries);
        s->need = s->pos;
        return MPSCAN_BAD;
    }
    s->pos += (size_t)hdrlen;
    for (uint64_t i = 0; i < count * (uint64_t)per_entry; i++) {
        mpscan_result r = scan_value(s, depth);
        if (r != MPSCAN_OK) return r;
    }
    return MPSCAN_OK;
}

static mpscan_result scan_value(scanner *s, int depth) {
    if (s->lim->max_objects && ++s->objects > s->lim->max_objects) {
        snprintf(s->why, s->whysz, "record of more than %u values", s->lim->max_objects);
        s->need = s->pos;
        return MPSCAN_BAD;
    }
    mpscan_result r = want(s, 1);
    if (r != MPSCAN_OK) return r;
    uint8_t b = s->p[s->pos];
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) { /* fixint, nil, bool */
        s->pos += 1;
        return MPSCAN_OK;
    }
    if (b >= 0xa0 && b <= 0xbf) { /* fixstr */
        r = want(s, 1 + (uint64_t)(b & 0x1f));
        if (r == MPSCAN_OK) s->pos += 1 + (b & 0x1fu);
        return r;
    }
    if (b >= 0x80 && b <= 0x8f) return scan_container(s, depth + 1, 1, b & 0x0f, 2);
    if (b >= 0x90 && b <= 0x9f) return scan_container(s, depth + 1, 1, b & 0x0f, 1);
    switch (b) {
    case 0xcc:
    case 0xd0:
        r = want(s, 2);
        if (!r) s->pos += 2;
        return r;
    case 0xcd:
    case 0xd1:
        r = want(s, 3);
        if (!r) s->pos += 3;
        return r;
    case 0xca:
    case 0xce:
    case 0xd2:
        r = want(s, 5);
        if (!r) s->pos += 5;
        return r;
    case 0xcb:
    case 0xcf:
    case 0xd3:
        r = want(s, 9);
        if (!r) s->pos += 9;
        return r;
    case 0xd4:
        r = want(s, 3);
        if (!r) s->pos += 3;
        return r; /* fixext 1 */
    case 0xd5:
        r = want(s, 4);
        if (!r) s->pos += 4;
        return r; /* fixext 2 */
    case 0xd6:
        r = want(s, 6);
        if (!r) s->pos += 6;
        return r; /* fixext 4 */
    case 0xd7:
        r = want(s, 10);
        if (!r) s->pos += 10;
        return r; /* fixext 8 */
    case 0xd8:
        r = want(s, 18);
        if (!r) s->pos += 18;
        return r; /* fixext 16 */
    case 0xd9:
    case 0xc4:
        return skip_sized(s, 1, 0); /* str8, bin8 */
    case 0xda:
    case 0xc5:
        return skip_sized(s, 2, 0); /* str16, bin16 */
    case 0xdb:
    case 0xc6:
        return skip_sized(s, 4, 0); /* str32, bin32 */
    case 0xc7:
        return skip_sized(s, 1, 1); /* ext8: +type byte */
    case 0xc8:
        return skip_sized(s, 2, 1);
    case 0xc9:
        return skip_sized(s, 4, 1);
    case 0xdc:
    case 0xde:
    case 0xdd:
    case 0xdf: {
        int lb = (b == 0xdc || b == 0xde) ? 2 : 4;
        r = want(s, 1 + (uint64_t)lb);
        if (r != MPSCAN_OK) return r;
        uint64_t n = be(s->p + s->pos + 1, lb);
        return scan_container(s, depth + 1, 1 + lb, n, (b == 0xde || b == 0xdf) ? 2 : 1);
    }
    default:
        return bad(s, "invalid MessagePack type byte 0xc1");
    }
}

mpscan_result mpscan(const uint8_t *p, size_t avail, const mpscan_limits *lim, size_t *len,
                     char *why, size_t whysz) {
    scanner s = {p, avail, 0, 0, 0, lim, why, whysz};
    if (whysz) why[0] = 0;
    mpscan_result r = scan_value(&s, 0);
    *len = r == MPSCAN_OK ? s.pos : s.need;
    return r;
}

size_t kiln_max_record_bytes(void) {
    const char *e = getenv("KILN_MAX_RECORD");
    uint64_t v;
    if (e && parse_u64(e, &v) && v >= 64 && v <= SIZE_MAX) return (size_t)v;
    return KILN_MAX_RECORD_DEFAULT;
}

mpscan_limits kiln_record_limits(void) {
    return (mpscan_limits){.max_bytes = kiln_max_record_bytes(),
                           .max_entries = KILN_MAX_CONTAINER,
                           .max_depth = KILN_MAX_DEPTH,
                           .max_objects = KILN_MAX_OBJECTS};
}
