/* Unit tests of lib/data/json: strict parsing, exact integers, errors with offsets, writers. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "data/json.h"
#include "core/rng.h"

static jval *parse(const char *s) {
    char err[200];
    return json_parse(s, strlen(s), 0, err, sizeof err);
}

/* Parse must fail, with a message that names the byte offset `at`. */
static void check_error(const char *s, size_t at) {
    char err[200], want[40];
    jval *v = json_parse(s, strlen(s), 8, err, sizeof err);
    CHECK(v == NULL);
    snprintf(want, sizeof want, "at byte %zu", at);
    if (!strstr(err, want)) fprintf(stderr, "  input %s: error '%s', want '%s'\n", s, err, want);
    CHECK(strstr(err, want) != NULL);
    json_free(v);
}

static void test_scalars(void) {
    jval *v = parse(" true ");
    CHECK(v && v->type == JSON_BOOL && v->b);
    json_free(v);
    v = parse("null");
    CHECK(v && v->type == JSON_NULL);
    json_free(v);
    v = parse("-12");
    CHECK(v && v->type == JSON_INT && v->i == -12);
    json_free(v);
    v = parse("0.5e1");
    CHECK(v && v->type == JSON_REAL && v->d == 5.0);
    json_free(v);
    v = parse("1E-2");
    CHECK(v && v->type == JSON_REAL && v->d == 0.01);
    json_free(v);
}

static void test_integers_exact(void) {
    jval *v = parse("9223372036854775807");
    CHECK(v && v->type == JSON_INT && v->i == INT64_MAX);
    json_free(v);
    v = parse("-9223372036854775808");
    CHECK(v && v->type == JSON_INT && v->i == INT64_MIN);
    json_free(v);
    v = parse("9223372036854775808");
    CHECK(v && v->type == JSON_UINT && v->u == (uint64_t)INT64_MAX + 1);
    json_free(v);
    v = parse("18446744073709551615");
    CHECK(v && v->type == JSON_UINT && v->u == UINT64_MAX);
    uint64_t u = 0;
    CHECK(json_u64(v, &u) && u == UINT64_MAX);
    json_free(v);
    /* 2^53 + 1 is not a double: it must survive as an integer. */
    v = parse("9007199254740993");
    CHECK(v && v->type == JSON_INT && v->i == 9007199254740993LL);
    json_free(v);
    check_error("18446744073709551616", 0);
    check_error("-9223372036854775809", 0);
}

static void test_strings(void) {
    jval *v = parse("\"a\\u0000b\\n\\\"\\/\\u00e9\\ud83d\\ude00\"");
    CHECK(v && v->type == JSON_STR);
    const char want[] = "a\0b\n\"/\xc3\xa9\xf0\x9f\x98\x80";
    CHECK(v && v->len == sizeof want - 1 && memcmp(v->s, want, v->len) == 0);
    CHECK(v && v->s[v->len] == '\0');
    json_free(v);
    v = parse("\"caf\xc3\xa9\"");
    CHECK(v && v->len == 5);
    json_free(v);
}

static void test_containers(void) {
    jval *v = parse("{\"a\": [1, 2.5, \"x\", {}], \"b\": {\"c\": null}, \"\": []}");
    CHECK(v && v->type == JSON_OBJ && v->n == 3);
    const jval *a = json_get(v, "a");
    CHECK(a && a->type == JSON_ARR && a->n == 4);
    CHECK(a && json_num(&a->items[0]) == 1.0 && json_num(&a->items[1]) == 2.5);
    CHECK(a && a->items[3].type == JSON_OBJ && a->items[3].n == 0);
    const jval *b = json_get(v, "b");
    CHECK(b && json_get(b, "c") && json_get(b, "c")->type == JSON_NULL);
    CHECK(json_get(v, "") && json_get(v, "")->type == JSON_ARR);
    CHECK(json_get(v, "zz") == NULL);
    CHECK(json_get(a, "a") == NULL);
    CHECK(isnan(json_num(b)));
    json_free(v);
}

static void test_errors(void) {
    check_error("", 0);
    check_error("   ", 3);
    check_error("[1,]", 3);
    check_error("{\"a\":1,}", 7);
    check_error("01", 0);
    check_error("-", 1);
    check_error("1.", 2);
    check_error("1e", 2);
    check_error(".5", 0);
    check_error("NaN", 0);
    check_error("1e400", 0);
    check_error("tru", 0);
    check_error("[1 2]", 3);
    check_error("{\"a\" 1}", 5);
    check_error("{1:2}", 1);
    check_error("\"abc", 4);
    check_error("\"a\tb\"", 2);
    check_error("\"\\x\"", 1);
    check_error("\"\\u12\"", 3);
    check_error("\"\\ud800\"", 1);
    check_error("\"\\ude00\"", 1);
    check_error("\"\\ud800\\u0041\"", 1);
    check_error("\"\xff\"", 1);
    check_error("\"\xc0\xaf\"", 1);         /* overlong '/' */
    check_error("\"\xed\xa0\x80\"", 1);     /* UTF-8 surrogate */
    check_error("\"\xf4\x90\x80\x80\"", 1); /* above U+10FFFF */
    check_error("1 2", 2);
    check_error("{\"a\":1,\"a\":2}", 13);
    check_error("// c\n1", 0);
    check_error("[[[[[[[[[1]]]]]]]]]", 8); /* depth 9 > 8 */
    /* A value cut off anywhere is an error, and nothing is read beyond n. */
    const char *doc = "{\"k\":[1,\"two\",{\"x\":null}]}";
    for (size_t n = 0; n < strlen(doc); n++) {
        char *copy = malloc(n + 1);
        memcpy(copy, doc, n);
        jval *v = json_parse(copy, n, 0, NULL, 0);
        CHECK(v == NULL);
        json_free(v);
        free(copy);
    }
    /* Exactly at the depth limit is fine. */
    jval *v = json_parse("[[1]]", 5, 2, NULL, 0);
    CHECK(v != NULL);
    json_free(v);
    v = json_parse("[[1]]", 5, 1, NULL, 0);
    CHECK(v == NULL);
}

static char *capture(void (*put)(FILE *, const void *, size_t), const void *arg, size_t n) {
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    put(f, arg, n);
    fclose(f);
    return out;
}

static void put_str(FILE *f, const void *s, size_t n) {
    json_put_str(f, s, n);
}

static void put_real(FILE *f, const void *d, size_t n) {
    (void)n;
    json_put_real(f, *(const double *)d);
}

static void check_real(double d, const char *want) {
    char *got = capture(put_real, &d, 0);
    if (strcmp(got, want) != 0) fprintf(stderr, "  real %.17g -> %s, want %s\n", d, got, want);
    CHECK(strcmp(got, want) == 0);
    free(got);
}

static void test_writers(void) {
    const char s[] = "a\0\"\\\n\x01\xc3\xa9\xff";
    char *out = capture(put_str, s, sizeof s - 1);
    CHECK(strcmp(out, "\"a\\u0000\\\"\\\\\\n\\u0001\xc3\xa9\xef\xbf\xbd\"") == 0);
    /* Valid UTF-8 round-trips exactly, NUL included. */
    const char ok[] = "x\0y\t\xf0\x9f\x98\x80\x7f";
    free(out);
    out = capture(put_str, ok, sizeof ok - 1);
    jval *v = json_parse(out, strlen(out), 0, NULL, 0);
    CHECK(v && v->type == JSON_STR && v->len == sizeof ok - 1 && !memcmp(v->s, ok, v->len));
    json_free(v);
    free(out);

    check_real(1.0, "1.0");
    check_real(-0.0, "-0.0");
    check_real(0.1, "0.1");
    check_real(2.5e-7, "2.5e-07");
    check_real(1e20, "1e+20");
    check_real(123456789012.0, "123456789012.0");
    check_real(NAN, "null");
    check_real(INFINITY, "null");
    /* Round trip through the parser, including values needing 16 and 17 digits. */
    const double vals[] = {0.1 + 0.2, 1.0 / 3, 5e-324, 1.7976931348623157e308, -2.0 / 7, 3.0};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        char b[40];
        json_format_real(b, sizeof b, vals[i]);
        v = json_parse(b, strlen(b), 0, NULL, 0);
        CHECK(v && v->type == JSON_REAL && v->d == vals[i]);
        json_free(v);
    }
}

/* Random damage to a document: parsed or refused, never a crash or a read past n. */
static void test_mutations(void) {
    const char doc[] =
        "{\"a\": [1, -2.5e3, \"x\\u00e9\\ud83d\\ude00\", {\"b\": null}], \"c\": true}";
    size_t n = sizeof doc - 1, parsed = 0;
    krng r;
    krng_init(&r, 3, 0, 0, 0);
    const char alphabet[] = "{}[]\",:\\u0123456789eE+-. tfnrl\x80\xc3\xed\xff";
    for (int trial = 0; trial < 5000; trial++) {
        size_t len = krng_below(&r, 4) ? n : krng_below(&r, n + 1);
        char *b = malloc(len ? len : 1);
        memcpy(b, doc, len);
        for (int k = 0; k < 1 + (int)krng_below(&r, 3) && len; k++)
            b[krng_below(&r, len)] = alphabet[krng_below(&r, sizeof alphabet - 1)];
        char err[200];
        jval *v = json_parse(b, len, 4, err, sizeof err);
        parsed += v != NULL;
        CHECK(v != NULL || strstr(err, "at byte ") != NULL);
        json_free(v);
        free(b);
    }
    CHECK(parsed < 5000);
}

int main(void) {
    test_scalars();
    test_integers_exact();
    test_strings();
    test_containers();
    test_errors();
    test_writers();
    test_mutations();
    return check_report("json");
}
