/* b64 — base64 encode and strict decode. */
#include "data/b64.h"

#include <stdint.h>
#include <stdlib.h>

#include "core/util.h"

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *b64_encode(const void *data, size_t n) {
    const unsigned char *p = data;
    char *out = xmalloc(xmul((n + 2) / 3, 4) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        *o++ = ALPHABET[v >> 18];
        *o++ = ALPHABET[(v >> 12) & 63];
        *o++ = i + 1 < n ? ALPHABET[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? ALPHABET[v & 63] : '=';
    }
    *o = 0;
    return out;
}

static int digit(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool b64_decode(const char *s, size_t n, unsigned char **out, size_t *outn) {
    if (n % 4) return false;
    unsigned char *buf = xmalloc(n / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int pad = (s[i + 3] == '=') + (s[i + 2] == '=');
        if (pad && i + 4 != n) goto bad;
        if (pad == 1 && s[i + 2] == '=') goto bad;
        int d[4];
        for (int j = 0; j < 4 - pad; j++)
            if ((d[j] = digit(s[i + j])) < 0) goto bad;
        for (int j = 4 - pad; j < 4; j++) d[j] = 0;
        uint32_t v =
            (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | (uint32_t)d[3];
        buf[k++] = (unsigned char)(v >> 16);
        if (pad < 2) buf[k++] = (unsigned char)(v >> 8);
        if (pad < 1) buf[k++] = (unsigned char)v;
    }
    *out = buf;
    *outn = k;
    return true;
bad:
    free(buf);
    return false;
}
