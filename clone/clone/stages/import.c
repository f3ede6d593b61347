/* kiln-import — turn JSON lines into records (the inverse of kiln show --full). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/b64.h"
#include "stream/options.h"
#include "data/json.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "turn JSON lines into records",
    .usage = "kiln import [FILE] [--out URL]",
    .text =
        "Each line is a JSON object with a type \"t\" (its \"seq\" is ignored: the writer numbers\n"
        "records).  An object {\"dtype\": D, \"data\": NESTED-ARRAYS [, \"shape\": [...]]} becomes "
        "a\n"
        "tensor of that safetensors dtype (F32, I32, U8, ...); {\"$bin\": BASE64} becomes binary.\n"
        "A {\"t\":\"hdr\"} line lends its extra fields to the stream's hdr; an eos line is "
        "dropped\n"
        "(the stream gets its own).  Reads stdin when FILE is absent.\n",
    .notes = "example:\n"
             "  printf '{\"t\":\"sample\",\"text\":\"hi\"}\\n' | kiln import | kiln show\n",
    .max_args = 1,
};

typedef struct {
    const char *file;
    uint64_t line;
} where;

_Noreturn static void bad(const where *w, const char *fmt, const char *arg) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    kiln_die(EX_KILN_DATA, "%s:%llu: %s", w->file, (unsigned long long)w->line, msg);
}

/* Flatten nested arrays of numbers into dst (element type dt), checking the shape. */
static void fill_elems(const where *w, const jval *v, kdtype dt, int d, const ktensor *t,
                       uint8_t *dst, uint64_t *i) {
    if (d < t->ndim) {
        if (v->type != JSON_ARR || v->n != t->shape[d])
            bad(w, "tensor data does not match its shape%s", "");
        for (size_t k = 0; k < v->n; k++) fill_elems(w, &v->items[k], dt, d + 1, t, dst, i);
        return;
    }
    uint8_t *p = dst + (*i)++ * kdtype_size(dt);
    if (v->type != JSON_INT && v->type != JSON_UINT && v->type != JSON_REAL && v->type != JSON_BOOL)
        bad(w, "tensor data holds a non-number%s", "");
    double x = v->type == JSON_BOOL ? v->b : json_num(v);
    union {
        double f64;
        float f32;
        int64_t i64;
        int32_t i32;
        int16_t i16;
        int8_t i8;
        uint64_t u64;
        uint32_t u32;
        uint16_t u16;
        uint8_t u8;
    } u;
    switch (dt) {
    case KT_F64:
        u.f64 = x;
        break;
    case KT_F32:
        u.f32 = (float)x;
        break;
    case KT_F16:
        u.u16 = kf32_to_f16((float)x);
        break;
    case KT_BF16:
        u.u16 = kf32_to_bf16((float)x);
        break;
    case KT_I64:
        if (!json_i64(v, &u.i64)) bad(w, "I64 tensor holds a non-integer%s", "");
        break;
    case KT_U64:
        if (!json_u64(v, &u.u64)) bad(w, "U64 tensor holds a non-integer%s", "");
        break;
    default: {
        int64_t iv = (int64_t)x;
        if ((double)iv != x) bad(w, "integer tensor holds a non-integer%s", "");
        static const struct {
            kdtype d;
            int64_t lo, hi;
        } range[] = {{KT_I32, INT32_MIN, INT32_MAX},
                     {KT_I16, INT16_MIN, INT16_MAX},
                     {KT_I8, -128, 127},
                     {KT_U32, 0, UINT32_MAX},
                     {KT_U16, 0, 65535},
                     {KT_U8, 0, 255},
                     {KT_BOOL, 0, 1}};
        for (size_t k = 0; k < sizeof range / sizeof *range; k++)
            if (range[k].d == dt && (iv < range[k].lo || iv > range[k].hi))
                bad(w, "tensor value out of range for %s", kdtype_name(dt));
        if (dt == KT_I32)
            u.i32 = (int32_t)iv;
        else if (dt == KT_I16)
            u.i16 = (int16_t)iv;
        else if (dt == KT_I8)
            u.i8 = (int8_t)iv;
        else if (dt == KT_U32)
            u.u32 = (uint32_t)iv;
        else if (dt == KT_U16)
            u.u16 = (uint16_t)iv;
        else
            u.u8 = (uint8_t)iv;
    }
    }
    memcpy(p, &u, kdtype_size(dt));
}

/* The shape implied by nested arrays (first element at each level). */
static void infer_shape(const where *w, const jval *v, ktensor *t) {
    t->ndim = 0;
    while (v->type == JSON_ARR) {
        if (t->ndim == KT_MAX_DIMS) bad(w, "tensor has more than 8 dimensions%s", "");
        t->shape[t->ndim++] = v->n;
        if (!v->n) break;
        v = &v->items[0];
    }
}

static bool is_tensor_spec(const jval *v) {
    return v->type == JSON_OBJ && json_get(v, "dtype") && json_get(v, "dtype")->type == JSON_STR &&
           (json_get(v, "data") || json_get(v, "mean"));
}

static void pack_value(kwriter *wr, const where *w, const jval *v, int depth, uint8_t ***keep,
                       size_t *nkeep);

static void pack_tensor(kwriter *wr, const where *w, const jval *v, uint8_t ***keep,
                        size_t *nkeep) {
    const jval *dtv = json_get(v, "dtype"), *data = json_get(v, "data"),
               *shape = json_get(v, "shape");
    if (!data)
        bad(w, "tensor was summarised by kiln show; export it with 'kiln show --full'%s", "");
    ktensor t = {0};
    t.dtype = kdtype_from_name(dtv->s, dtv->len);
    if (t.dtype == KT_INVALID) bad(w, "unknown tensor dtype '%s'", dtv->s);
    if (shape) {
        if (shape->type != JSON_ARR || shape->n > KT_MAX_DIMS) bad(w, "bad tensor shape%s", "");
        t.ndim = (int)shape->n;
        for (size_t i = 0; i < shape->n; i++)
            if (!json_u64(&shape->items[i], &t.shape[i])) bad(w, "bad tensor shape%s", "");
    } else {
        infer_shape(w, data, &t);
    }
    uint64_t bytes;
    if (!ktensor_expected_bytes(&t, &bytes) || bytes > (1ull << 32))
        bad(w, "tensor too large%s", "");
    uint8_t *buf = xmalloc(bytes);
    uint64_t i = 0;
    if (t.ndim == 0 && data->type == JSON_ARR) bad(w, "tensor data does not match its shape%s", "");
    fill_elems(w, data, t.dtype, 0, &t, buf, &i);
    t.data = buf;
    t.nbytes = bytes;
    kw_tensor_value(wr, &t);
    *keep = xrealloc(*keep, xmul(*nkeep + 1, sizeof **keep)); /* data lives until the record ends */
    (*keep)[(*nkeep)++] = buf;
}

static void pack_value(kwriter *wr, const where *w, const jval *v, int depth, uint8_t ***keep,
                       size_t *nkeep) {
    msgpack_packer *pk = kw_packer(wr);
    /* A tensor is a map holding an array: two levels. */
    int levels = is_tensor_spec(v) ? 2 : (v->type == JSON_ARR || v->type == JSON_OBJ) ? 1 : 0;
    if (levels && depth + levels > KILN_MAX_DEPTH)
        bad(w, "nesting deeper than the record limit of %s", "8");
    if ((v->type == JSON_ARR || v->type == JSON_OBJ) && v->n > KILN_MAX_CONTAINER &&
        !is_tensor_spec(v))
        bad(w, "an array or object of more than %s entries (use a tensor)", "1024");
    switch (v->type) {
    case JSON_ARR:
        msgpack_pack_array(pk, v->n);
        for (size_t i = 0; i < v->n; i++) pack_value(wr, w, &v->items[i], depth + 1, keep, nkeep);
        break;
    case JSON_OBJ: {
        const jval *b = json_get(v, "$bin");
        if (v->n == 1 && b && b->type == JSON_STR) {
            unsigned char *raw;
            size_t n;
            if (!b64_decode(b->s, b->len, &raw, &n)) bad(w, "bad base64 in $bin%s", "");
            msgpack_pack_bin_with_body(pk, raw, n);
            free(raw);
        } else if (is_tensor_spec(v)) {
            pack_tensor(wr, w, v, keep, nkeep);
        } else {
            msgpack_pack_map(pk, v->n);
            for (size_t i = 0; i < v->n; i++) {
                msgpack_pack_str_with_body(pk, v->keys[i], v->keylens[i]);
                pack_value(wr, w, &v->items[i], depth + 1, keep, nkeep);
            }
        }
        break;
    }
    default: /* scalars */
        json_pack(pk, v);
    }
}

/* Fields of o except t and seq (and, for a hdr, the ones kiln sets itself). */
static void pack_fields(kwriter *wr, const where *w, const jval *o, bool hdr) {
    static const char *hdr_own[] = {"v", "stage", "schema", "seed", "chain"};
    uint8_t **keep = NULL;
    size_t nkeep = 0;
    if (o->n + 2 > KILN_MAX_CONTAINER) bad(w, "a record of more than %s fields", "1022");
    for (size_t i = 0; i < o->n; i++) {
        const char *k = o->keys[i];
        if (strcmp(k, "t") == 0 || strcmp(k, "seq") == 0) continue;
        bool own = false;
        for (size_t j = 0; hdr && j < sizeof hdr_own / sizeof *hdr_own; j++)
            own |= !strcmp(k, hdr_own[j]);
        if (own) continue;
        kw_key(wr, k);
        pack_value(wr, w, &o->items[i], 1, &keep, &nkeep);
    }
    kwriter_end(wr);
    for (size_t i = 0; i < nkeep; i++) free(keep[i]);
    free(keep);
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    kopt rows[] = {KOPT_GROUP("record streams"), KOPT_STREAM_OUT(&cli), KOPT_END()};
    kiln_cli_parse(&cli, rows, argc, argv);
    where w = {cli.nargs ? cli.args[0] : "stdin", 0};
    FILE *in = cli.nargs ? fopen(w.file, "r") : stdin;
    if (!in) kiln_die(EX_KILN_IO, "%s: cannot open: %s", w.file, strerror(errno));
    kwriter *wr = kiln_cli_writer(&cli);
    char *line = NULL, err[256];
    size_t cap = 0;
    ssize_t n;
    bool hdr_done = false;
    while (!kiln_stop_signal() && (n = getline(&line, &cap, in)) >= 0) {
        if (kiln_stop_signal()) break; /* a line cut short by the signal is not a line */
        w.line++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        size_t skip = 0;
        while ((ssize_t)skip < n && (line[skip] == ' ' || line[skip] == '\t')) skip++;
        if ((ssize_t)skip == n) continue;
        jval *v = json_parse(line, (size_t)n, KILN_MAX_DEPTH + 8, err, sizeof err);
        if (!v) bad(&w, "%s", err);
        const jval *t = json_get(v, "t");
        if (v->type != JSON_OBJ || !t || t->type != JSON_STR || !t->len || t->len > 31)
            bad(&w, "each line must be a JSON object with a type \"t\"%s", "");
        bool is_hdr = strcmp(t->s, "hdr") == 0;
        if (!hdr_done) { /* the stream's own hdr, with the fields of a hdr line if one leads */
            kwriter_hdr_begin(wr, NULL, "json", 0);
            if (is_hdr)
                pack_fields(wr, &w, v, true);
            else
                kwriter_end(wr);
            hdr_done = true;
        }
        if (!is_hdr && strcmp(t->s, "eos") != 0) {
            kwriter_begin(wr, t->s);
            pack_fields(wr, &w, v, false);
        }
        json_free(v);
    }
    if (ferror(in) && !kiln_stop_signal())
        kiln_die(EX_KILN_IO, "%s: read error: %s", w.file, strerror(errno));
    if (!hdr_done) {
        kwriter_hdr_begin(wr, NULL, "json", 0);
        kwriter_end(wr);
    }
    free(line);
    if (in != stdin) fclose(in);
    kiln_finish(NULL, wr);
}
