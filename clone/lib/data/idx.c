/* idx — read IDX files through zlib's gz* interface, which also reads uncompressed files. */
#include "data/idx.h"

#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Read up to n bytes; returns how many, or -1 with err set on a zlib or I/O error. */
static long long read_full(gzFile f, uint8_t *p, size_t n, char *err, size_t errlen) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, p + got, (unsigned)want);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            snprintf(err, errlen, "%s (%s)", zerr == Z_ERRNO ? "read error" : "bad gzip data",
                     zerr == Z_ERRNO ? strerror(errno) : msg);
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long long)got;
}

static bool read_header(gzFile f, kidx *x, char *err, size_t errlen) {
    uint8_t magic[4];
    long long n = read_full(f, magic, 4, err, errlen);
    if (n < 0) return false;
    if (n < 4) {
        snprintf(err, errlen, "short header (%lld bytes): not an IDX file", n);
        return false;
    }
    if (magic[0] || magic[1] || magic[3] < 1 || magic[3] > KIDX_MAX_DIMS) {
        snprintf(err, errlen, "wrong magic 0x%02x%02x%02x%02x: not an IDX file", magic[0], magic[1],
                 magic[2], magic[3]);
        return false;
    }
    if (magic[2] != 0x08) {
        snprintf(err, errlen,
                 "IDX data type 0x%02x not supported (kiln reads 0x08, unsigned bytes)", magic[2]);
        return false;
    }
    x->ndim = magic[3];
    uint8_t dims[4 * KIDX_MAX_DIMS];
    n = read_full(f, dims, 4 * (size_t)x->ndim, err, errlen);
    if (n < 0) return false;
    if (n < 4 * x->ndim) {
        snprintf(err, errlen, "short header: %d sizes promised, file ends first", x->ndim);
        return false;
    }
    for (int i = 0; i < x->ndim; i++) {
        const uint8_t *p = dims + 4 * i;
        x->dims[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (!x->dims[i]) { /* zero items, or items of no bytes: nothing to read as data */
            snprintf(err, errlen, "size %d of %d is 0", i + 1, x->ndim);
            return false;
        }
    }
    return true;
}

bool kidx_read(const char *path, uint64_t max_bytes, kidx *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open (%s)", errno ? strerror(errno) : "out of memory");
        return false;
    }
    gzbuffer(f, 1 << 17);
    bool ok = read_header(f, out, err, errlen);
    if (ok) {
        uint64_t item = 1, total = 0;
        bool overflow = false;
        for (int i = 1; i < out->ndim; i++)
            overflow |= __builtin_mul_overflow(item, (uint64_t)out->dims[i], &item);
        overflow |= __builtin_mul_overflow(item, (uint64_t)out->dims[0], &total);
        if (overflow || total > max_bytes) {
            snprintf(err, errlen, "declares %u items of %llu bytes, over the limit of %llu bytes",
                     out->dims[0], (unsigned long long)item, (unsigned long long)max_bytes);
            ok = false;
        } else {
            out->count = out->dims[0];
            out->item_bytes = (size_t)item;
            out->data = xmalloc((size_t)total);
            long long n = read_full(f, out->data, (size_t)total, err, errlen);
            if (n >= 0 && (uint64_t)n < total)
                snprintf(err, errlen, "short data: header promises %llu bytes, file has %lld",
                         (unsigned long long)total, n);
            ok = n >= 0 && (uint64_t)n == total;
            uint8_t extra;
            if (ok && (n = read_full(f, &extra, 1, err, errlen)) != 0) {
                if (n > 0)
                    snprintf(err, errlen,
                             "bytes after the %llu the header promises "
                             "(a damaged or concatenated file?)",
                             (unsigned long long)total);
                ok = false;
            }
        }
    }
    gzclose(f);
    if (!ok) kidx_free(out);
    return ok;
}

void kidx_free(kidx *x) {
    free(x->data);
    memset(x, 0, sizeof *x);
}
