/* text — what `kiln load text:` needs to turn files into documents: UTF-8 checking and
 * repair, and splitting a buffer into pieces (docs, lines, paragraphs, separator lines,
 * fixed-size chunks that never cut a UTF-8 character). */
#ifndef KILN_TEXT_H
#define KILN_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Offset of the first byte that is not part of valid UTF-8 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or n when all of s is valid. */
/* The length of the valid UTF-8 sequence at s (1 to 4), or 0 when it is invalid (overlong,
 * surrogate, above U+10FFFF, truncated); then *bad is the length of its maximal subpart. */
size_t ktext_utf8_seq(const uint8_t *s, size_t n, size_t *bad);
size_t ktext_utf8_check(const uint8_t *s, size_t n);
/* A copy of s with every invalid sequence replaced by U+FFFD (one per maximal invalid
 * subpart, as the Unicode standard recommends).  *outlen gets the new length. */
uint8_t *ktext_utf8_repair(const uint8_t *s, size_t n, size_t *outlen);

typedef enum { KSPLIT_DOCS, KSPLIT_LINES, KSPLIT_PARAGRAPHS, KSPLIT_SEP, KSPLIT_CHUNK } ksplit_kind;

typedef struct ksplit {
    ksplit_kind kind;
    char sep[256]; /* KSPLIT_SEP: a line equal to this separates pieces */
    size_t chunk;  /* KSPLIT_CHUNK: bytes per piece (at most) */
} ksplit;

/* "docs", "lines", "paragraphs", "sep:STR", "chunk:N". */
bool ksplit_parse(const char *spec, ksplit *out, char *err, size_t errlen);

/* The next non-empty piece of s[0..n) at or after *pos: [*start, *start + *len).  Lines
 * lose their line ending; paragraphs (runs of non-blank lines) and separated pieces lose
 * their surrounding newlines; chunks end on a character boundary.  false when done. */
bool ksplit_next(const ksplit *sp, const uint8_t *s, size_t n, size_t *pos, size_t *start,
                 size_t *len);

#endif
