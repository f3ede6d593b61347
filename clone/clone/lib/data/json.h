/* json — a small, strict, bounded JSON parser (to a DOM) and writer helpers.
 *
 * Used by `kiln import` (JSON lines -> records), `kiln show` (records -> JSON lines) and the
 * safetensors header.  Strict RFC 8259: no comments, no trailing commas, no leading zeros,
 * no NaN/Infinity, UTF-8 input only (invalid UTF-8 and lone surrogates are errors), no
 * duplicate keys in an object, nothing but whitespace after the value.
 *
 * Numbers keep their exact value: an integer (no '.', no exponent) parses as JSON_INT
 * (int64) or, above INT64_MAX, JSON_UINT (uint64); an integer outside both ranges is an
 * error rather than a silent rounding.  Anything else is JSON_REAL; a real that overflows a
 * double (1e400) is an error.  So JSON -> records -> JSON is lossless. */
#ifndef KILN_JSON_H
#define KILN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <msgpack.h>

typedef enum {
    JSON_NULL,
    JSON_BOOL,
    JSON_INT,
    JSON_UINT,
    JSON_REAL,
    JSON_STR,
    JSON_ARR,
    JSON_OBJ
} jtype;

typedef struct jval {
    jtype type;
    bool b;     /* BOOL */
    int64_t i;  /* INT */
    uint64_t u; /* UINT (only values > INT64_MAX) */
    double d;   /* REAL */
    char *s;    /* STR: decoded UTF-8 (may contain NUL), NUL-terminated */
    size_t len; /* STR: bytes in s, without the terminating NUL */
    /* ARR / OBJ: n items; OBJ also has n keys (decoded, NUL-terminated, keylens bytes). */
    struct jval *items;
    char **keys;
    size_t *keylens;
    size_t n;
} jval;

/* Default nesting limit when max_depth < 1: "[[1]]" has depth 2, a scalar depth 0.
 * The parser recurses once per level, so keep the limit modest (it bounds the stack). */
#define JSON_DEFAULT_DEPTH 64

/* Parse exactly n bytes (text need not be NUL-terminated).  On error returns NULL and
 * writes "what is wrong at byte OFFSET" into err (if err is not NULL).  Running out of
 * memory exits 70, as xmalloc does everywhere in kiln. */
jval *json_parse(const char *text, size_t n, int max_depth, char *err, size_t errsz);
/* Whether v, as the fields of one record, stays within what every reader of the stream
 * accepts (lib/stream/mpscan.h): nesting of at most KILN_MAX_DEPTH with the record's own map
 * as level 1, at most KILN_MAX_CONTAINER entries in any array or object (extra_fields more
 * in v itself: the fields a stage adds), and no object shaped like a tensor ({dtype,
 * shape, data}, which a reader checks as one and JSON cannot hold).  false with the reason
 * in err. */
bool json_fits_record(const jval *v, size_t extra_fields, char *err, size_t errsz);
/* Free a value returned by json_parse (NULL is fine). */
void json_free(jval *v);

/* The value of key in an object (the key is a C string: no embedded NUL), or NULL when obj
 * is not an object or lacks the key. */
const jval *json_get(const jval *obj, const char *key);
/* INT, UINT or REAL as a double; NAN for anything else. */
double json_num(const jval *v);
/* True for JSON_INT and JSON_UINT: the value fits in a u64 (non-negative) or i64. */
bool json_u64(const jval *v, uint64_t *out);
bool json_i64(const jval *v, int64_t *out);

/* ---- writing ---------------------------------------------------------------------------- */

/* s[0..n) as a quoted JSON string.  Control characters and NUL are escaped (\n, \u0000...),
 * so any valid UTF-8 string, NULs included, round-trips exactly.  Bytes that are not valid
 * UTF-8 cannot be written losslessly in JSON (a "\u00XX" escape means the code point
 * U+00XX, not the byte XX): each such byte is written as U+FFFD, the replacement character. */
void json_put_str(FILE *f, const char *s, size_t n);
/* A double in the shortest form that parses back to the same value (%.15g, %.16g, then
 * %.17g), always recognisable as a real: "1.0", not "1"; "1e+20" stays.  JSON has no NaN or
 * infinity: those are written as null. */
void json_put_real(FILE *f, double d);
/* Shortest round-trip form of d into buf (at least 32 bytes), as json_put_real writes it. */
void json_format_real(char *buf, size_t bufsize, double d);

/* A JSON value as MessagePack: null -> nil, numbers keep their kind (int, uint, double),
 * strings, arrays and objects as such (kiln load jsonl:, record metadata). */
void json_pack(msgpack_packer *pk, const jval *v);

#endif
