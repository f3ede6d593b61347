/* b64 — base64 (RFC 4648, with padding) for binary values in JSON text (`kiln show`,
 * `kiln import`). */
#ifndef KILN_B64_H
#define KILN_B64_H

#include <stdbool.h>
#include <stddef.h>

/* NUL-terminated encoding; the caller frees it. */
char *b64_encode(const void *data, size_t n);
/* Decode into a new buffer (*out, *outn); false on a malformed input. */
bool b64_decode(const char *s, size_t n, unsigned char **out, size_t *outn);

#endif
