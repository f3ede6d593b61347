/* kiln-show — print a record stream as JSON lines, one record a line. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "cli.h"
#include "json.h"
#include "util.h"

static const char HELP[] =
    "kiln-show — print a record stream as JSON lines (tensors summarised)\n"
    "usage: kiln show [--all] [--full] [--in URL]\n"
    "  -a, --all       include the hdr and eos records\n"
    "  -f, --full      print tensor values as nested arrays instead of a summary\n" KILN_CLI_HELP
    "Tensors print as {dtype, shape, min, max, mean}; with --full as {dtype, shape, data}.\n"
    "Binary values that are not tensors print as {\"$bin\": BASE64}.  `kiln import` reads\n"
    "this output back (use --full for tensors).\n"
    "example:\n"
    "  printf '{\"t\":\"sample\",\"text\":\"hi\"}\\n' | kiln import | kiln show\n";

static bool full;

static void put_value(const msgpack_object *o);

/* The shortest decimal that reads back as the same float ("3e-05", not 2.99999992e-05). */
static void put_float(float f) {
    char buf[48];
    if (!isfinite(f)) {
        fputs("null", stdout);
        return;
    }
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    fputs(buf, stdout);
    if (!strpbrk(buf, ".e")) fputs(".0", stdout); /* a real stays a real */
}

static void put_elem(const ktensor *t, uint64_t i) {
    const uint8_t *p = (const uint8_t *)t->data + i * kdtype_size(t->dtype);
    if (t->dtype == KT_I64) {
        int64_t v;
        memcpy(&v, p, 8);
        printf("%lld", (long long)v);
    } else if (t->dtype == KT_U64) {
        uint64_t v;
        memcpy(&v, p, 8);
        printf("%llu", (unsigned long long)v);
    } else if (t->dtype == KT_F64) {
        json_put_real(stdout, ktensor_get(t, i));
    } else if (t->dtype == KT_F32 || t->dtype == KT_F16 || t->dtype == KT_BF16) {
        put_float((float)ktensor_get(t, i));
    } else {
        printf("%lld", (long long)ktensor_get(t, i));
    }
}

/* Values of dimension d onwards, starting at element *i, as nested arrays. */
static void put_nested(const ktensor *t, int d, uint64_t *i) {
    if (d == t->ndim) {
        put_elem(t, (*i)++);
        return;
    }
    putchar('[');
    for (uint64_t k = 0; k < t->shape[d]; k++) {
        if (k) putchar(',');
        put_nested(t, d + 1, i);
    }
    putchar(']');
}

static void put_tensor(const ktensor *t) {
    printf("{\"dtype\":\"%s\",\"shape\":[", kdtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) printf(d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
    putchar(']');
    uint64_t n = 0;
    ktensor_numel(t, &n);
    if (full) {
        uint64_t i = 0;
        fputs(",\"data\":", stdout);
        put_nested(t, 0, &i);
    } else if (n > 0) {
        double lo = INFINITY, hi = -INFINITY, sum = 0;
        for (uint64_t i = 0; i < n; i++) {
            double v = ktensor_get(t, i);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
            sum += v;
        }
        fputs(",\"min\":", stdout);
        json_put_real(stdout, lo);
        fputs(",\"max\":", stdout);
        json_put_real(stdout, hi);
        fputs(",\"mean\":", stdout);
        json_put_real(stdout, sum / (double)n);
    }
    putchar('}');
}

static void put_value(const msgpack_object *o) {
    ktensor t;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: fputs("null", stdout); break;
    case MSGPACK_OBJECT_BOOLEAN: fputs(o->via.boolean ? "true" : "false", stdout); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: printf("%llu", (unsigned long long)o->via.u64); break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: printf("%lld", (long long)o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: json_put_real(stdout, o->via.f64); break;
    case MSGPACK_OBJECT_STR: json_put_str(stdout, o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT: {
        const char *p = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr : o->via.ext.ptr;
        size_t n = o->type == MSGPACK_OBJECT_BIN ? o->via.bin.size : o->via.ext.size;
        char *enc = b64_encode(p, n);
        printf("{\"$bin\":\"%s\"}", enc);
        free(enc);
        break;
    }
    case MSGPACK_OBJECT_ARRAY:
        putchar('[');
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i) putchar(',');
            put_value(&o->via.array.ptr[i]);
        }
        putchar(']');
        break;
    case MSGPACK_OBJECT_MAP:
        if (kobj_tensor(o, &t)) {
            put_tensor(&t);
            break;
        }
        putchar('{');
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i) putchar(',');
            if (k->type == MSGPACK_OBJECT_STR) put_value(k);
            else { /* JSON keys are strings: show other keys as their JSON text, quoted */
                putchar('"');
                put_value(k);
                putchar('"');
            }
            putchar(':');
            put_value(&o->via.map.ptr[i].val);
        }
        putchar('}');
        break;
    }
}

static void put_record(const krec *r) {
    put_value(r->map);
    putchar('\n');
    if (ferror(stdout) || (isatty(1) && fflush(stdout) != 0)) {
        if (errno == EPIPE) exit(EX_KILN_OK); /* `kiln show | head`: fine */
        kiln_die(EX_KILN_IO, "stdout: write error: %s", strerror(errno));
    }
}

int main(int argc, char **argv) {
    kiln_cli cli;
    bool all = false;
    static const struct option longopts[] = {
        {"all", no_argument, 0, 'a'}, {"full", no_argument, 0, 'f'}, KILN_CLI_LONGOPTS, {0}};
    kiln_cli_init(&cli, argc, argv, HELP);
    int c;
    while ((c = getopt_long(argc, argv, "afh", longopts, NULL)) != -1) {
        if (c == 'a') all = true;
        else if (c == 'f') full = true;
        else kiln_cli_option(&cli, c, optarg);
    }
    if (optind < argc) kiln_usage_error("unexpected argument '%s'", argv[optind]);
    kreader *r = kiln_cli_reader(&cli);
    if (all) put_record(kreader_hdr(r));
    krec rec;
    while (kreader_next(r, &rec)) put_record(&rec);
    if (all && kreader_status(r)) put_record(&rec); /* the eos */
    if (fflush(stdout) != 0) {
        if (errno == EPIPE) exit(EX_KILN_OK);
        kiln_die(EX_KILN_IO, "stdout: write error: %s", strerror(errno));
    }
    int sig = kiln_stop_signal();
    kreader_close(r);
    return sig ? kiln_stop_status(sig) : EX_KILN_OK;
}
