/* stream — record reader and writer over any transport (see stream.h, transport.h). */
#include "stream/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/util.h"
#include "stream/transport.h"

/* ================================ records ================================================ */

const msgpack_object *kobj_get(const msgpack_object *map, const char *key) {
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            memcmp(k->via.str.ptr, key, kl) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

bool kobj_str_eq(const msgpack_object *o, const char *s) {
    size_t n = strlen(s);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

bool kobj_cstr(const msgpack_object *o, char *buf, size_t bufsize) {
    if (!o || o->type != MSGPACK_OBJECT_STR || !bufsize) return false;
    size_t n = o->via.str.size < bufsize - 1 ? o->via.str.size : bufsize - 1;
    memcpy(buf, o->via.str.ptr, n);
    buf[n] = 0;
    return true;
}

const msgpack_object *krec_get(const krec *r, const char *key) {
    return kobj_get(r->map, key);
}

bool krec_is(const krec *r, const char *type) {
    return strcmp(r->t, type) == 0;
}

bool krec_str(const krec *r, const char *key, const char **s, size_t *n) {
    const msgpack_object *o = krec_get(r, key);
    if (!o || o->type != MSGPACK_OBJECT_STR) return false;
    *s = o->via.str.ptr;
    *n = o->via.str.size;
    return true;
}

bool krec_u64(const krec *r, const char *key, uint64_t *v) {
    const msgpack_object *o = krec_get(r, key);
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return false;
    *v = o->via.u64;
    return true;
}

bool krec_i64(const krec *r, const char *key, int64_t *v) {
    const msgpack_object *o = krec_get(r, key);
    if (!o) return false;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *v = o->via.i64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *v = (int64_t)o->via.u64;
    else
        return false;
    return true;
}

bool krec_f64(const krec *r, const char *key, double *v) {
    const msgpack_object *o = krec_get(r, key);
    if (!o) return false;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        *v = o->via.f64;
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *v = (double)o->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *v = (double)o->via.i64;
        return true;
    default:
        return false;
    }
}

/* Fills out from a {dtype, shape, data} map; why says what is wrong when it is not one. */
static bool tensor_from_obj(const msgpack_object *o, ktensor *out, const char **why) {
    const msgpack_object *dt = kobj_get(o, "dtype"), *sh = kobj_get(o, "shape"),
                         *da = kobj_get(o, "data");
    /* Each rule its own message: a stage written in another language learns which it broke
     * (docs/writing-a-stage.md). */
    *why = "not a tensor map {dtype, shape, data}";
    if (!dt || !sh || !da) return false;
    if (dt->type != MSGPACK_OBJECT_STR)
        return *why = "tensor dtype must be a MessagePack str (\"F32\", \"U8\", ...)", false;
    if (sh->type != MSGPACK_OBJECT_ARRAY)
        return *why = "tensor shape must be a MessagePack array of unsigned integers", false;
    if (da->type != MSGPACK_OBJECT_BIN)
        return *why = da->type == MSGPACK_OBJECT_STR
                          ? "tensor data must be a MessagePack bin, not a str (Python: bytes, "
                            "and msgpack.packb(..., use_bin_type=True))"
                          : "tensor data must be a MessagePack bin of little-endian bytes",
               false;
    memset(out, 0, sizeof *out);
    out->dtype = kdtype_from_name(dt->via.str.ptr, dt->via.str.size);
    if (out->dtype == KT_INVALID) return *why = "unknown tensor dtype", false;
    if (sh->via.array.size > KT_MAX_DIMS) return *why = "tensor has more than 8 dimensions", false;
    out->ndim = (int)sh->via.array.size;
    for (int i = 0; i < out->ndim; i++) {
        const msgpack_object *d = &sh->via.array.ptr[i];
        if (d->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (d->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                return *why = "negative tensor dimension", false;
            return *why = "tensor shape holds a non-integer", false;
        }
        out->shape[i] = d->via.u64;
    }
    uint64_t want;
    if (!ktensor_expected_bytes(out, &want)) return *why = "tensor size overflows", false;
    if (want != da->via.bin.size)
        return *why = "tensor data length does not match its shape", false;
    out->data = da->via.bin.ptr;
    out->nbytes = da->via.bin.size;
    return true;
}

bool kobj_tensor(const msgpack_object *o, ktensor *out) {
    const char *why;
    return o && o->type == MSGPACK_OBJECT_MAP && tensor_from_obj(o, out, &why);
}

bool krec_tensor(const krec *r, const char *key, ktensor *out) {
    return kobj_tensor(krec_get(r, key), out);
}

/* A map whose keys are exactly dtype, shape and data claims to be a tensor: check it. */
static const char *check_tensors(const msgpack_object *o) {
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            const char *why = check_tensors(&o->via.array.ptr[i]);
            if (why) return why;
        }
    } else if (o->type == MSGPACK_OBJECT_MAP) {
        if (o->via.map.size == 3 && kobj_get(o, "dtype") && kobj_get(o, "shape") &&
            kobj_get(o, "data")) {
            ktensor t;
            const char *why;
            return tensor_from_obj(o, &t, &why) ? NULL : why;
        }
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const char *why = check_tensors(&o->via.map.ptr[i].val);
            if (why) return why;
        }
    }
    return NULL;
}

/* ================================ what transports know of records ======================== */

/* Map header, t and seq: the record's first bytes, packed into head. */
static size_t pack_head(uint8_t *head, uint32_t nfields, const char *type, uint64_t seq) {
    size_t n = 0, tl = strlen(type);
    uint32_t m = nfields + 2;
    if (m < 16)
        head[n++] = (uint8_t)(0x80 | m);
    else if (m < 65536) {
        head[n++] = 0xde;
        head[n++] = (uint8_t)(m >> 8);
        head[n++] = (uint8_t)m;
    } else {
        head[n++] = 0xdf;
        for (int i = 3; i >= 0; i--) head[n++] = (uint8_t)(m >> (8 * i));
    }
    head[n++] = 0xa1;
    head[n++] = 't';
    head[n++] = (uint8_t)(0xa0 | tl); /* type names are < 32 bytes */
    memcpy(head + n, type, tl);
    n += tl;
    head[n++] = 0xa3;
    memcpy(head + n, "seq", 3);
    n += 3;
    head[n++] = 0xcf;
    for (int i = 7; i >= 0; i--) head[n++] = (uint8_t)(seq >> (8 * i));
    return n;
}

/* The end-of-stream record, built here and nowhere else: kwriter_close has its transport
 * send one to each receiver, and a ZeroMQ fan-in hands its stage one merged. */
static size_t pack_eos(uint8_t *buf, uint64_t seq, uint64_t count, const char *status) {
    size_t n = pack_head(buf, 2, "eos", seq), sl = strnlen(status, KT_STATUS_MAX - 1);
    buf[n++] = 0xa5;
    memcpy(buf + n, "count", 5);
    n += 5;
    buf[n++] = 0xcf;
    for (int i = 7; i >= 0; i--) buf[n++] = (uint8_t)(count >> (8 * i));
    buf[n++] = 0xa6;
    memcpy(buf + n, "status", 6);
    n += 6;
    buf[n++] = (uint8_t)(0xa0 | sl);
    memcpy(buf + n, status, sl);
    return n + sl;
}

/* The type of a record whose first key is "t" with a short string value, as every kiln
 * writer packs it (pack_head); false for any other layout. */
static bool leading_type(const uint8_t *p, size_t n, char type[32]) {
    size_t i = (p[0] & 0xf0) == 0x80 ? 1 : p[0] == 0xde ? 3 : p[0] == 0xdf ? 5 : 0;
    if (!i || i + 3 > n || p[i] != 0xa1 || p[i + 1] != 't' || (p[i + 2] & 0xe0) != 0xa0)
        return false;
    size_t len = p[i + 2] & 0x1fu;
    if (i + 3 + len > n) return false;
    memcpy(type, p + i + 3, len);
    type[len] = 0;
    return true;
}

/* kt_codec.kind: hdr and eos are told apart from the rest without decoding the common
 * record; an eos (or a record laid out otherwise) is decoded. */
static kt_kind record_kind(const uint8_t *p, size_t n, uint64_t *count, char *status) {
    char type[32];
    if (leading_type(p, n, type) && strcmp(type, "hdr") != 0 && strcmp(type, "eos") != 0)
        return KT_DATA;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    kt_kind kind = KT_DATA;
    if (msgpack_unpack_next(&u, (const char *)p, n, &off) == MSGPACK_UNPACK_SUCCESS) {
        const msgpack_object *t = kobj_get(&u.data, "t"), *c = kobj_get(&u.data, "count");
        if (kobj_str_eq(t, "hdr")) kind = KT_HDR;
        if (kobj_str_eq(t, "eos")) {
            kind = KT_EOS;
            *count = c && c->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? c->via.u64 : 0;
            if (!kobj_cstr(kobj_get(&u.data, "status"), status, KT_STATUS_MAX))
                strcpy(status, "ok");
        }
    }
    msgpack_unpacked_destroy(&u);
    return kind;
}

/* An unsigned integer at p (fixint, uint8..uint64); false for any other type. */
static bool scan_uint(const uint8_t *p, size_t n, uint64_t *v, size_t *len) {
    if (n && p[0] < 0x80) return *v = p[0], *len = 1, true;
    int w = n && p[0] >= 0xcc && p[0] <= 0xcf ? 1 << (p[0] - 0xcc) : 0;
    if (!w || (size_t)w + 1 > n) return false;
    *v = 0;
    for (int i = 1; i <= w; i++) *v = *v << 8 | p[i];
    return *len = (size_t)w + 1, true;
}

/* kt_codec.key: a record's (epoch, id), read from its top-level map without decoding it
 * (kiln writers put both right after t and seq); epoch 0 when absent, false without an id.
 * The bytes were bounded by mpscan, which also skips the values on the way. */
static bool record_key(const uint8_t *p, size_t n, uint64_t *epoch, uint64_t *id) {
    static mpscan_limits lim;
    if (!lim.max_bytes) lim = kiln_record_limits();
    size_t i = (p[0] & 0xf0) == 0x80 ? 1 : p[0] == 0xde ? 3 : p[0] == 0xdf ? 5 : 0;
    uint64_t entries = (p[0] & 0xf0) == 0x80 ? (p[0] & 0x0fu) : 0;
    for (size_t k = 1; k < i; k++) entries = entries << 8 | p[k];
    bool have_id = false, have_epoch = false;
    *epoch = 0;
    for (uint64_t e = 0; i && e < entries && !(have_id && have_epoch) && i < n; e++) {
        size_t klen = (p[i] & 0xe0) == 0xa0 ? (p[i] & 0x1fu) : 0, len;
        const char *key = (const char *)p + i + 1;
        if (!klen && mpscan(p + i, n - i, &lim, &len, NULL, 0) != MPSCAN_OK) return false;
        i += klen ? 1 + klen : len; /* a key other than a fixstr is skipped whole */
        if (i >= n) return false;
        uint64_t v;
        if (klen == 2 && !memcmp(key, "id", 2) && scan_uint(p + i, n - i, &v, &len))
            *id = v, have_id = true;
        else if (klen == 5 && !memcmp(key, "epoch", 5) && scan_uint(p + i, n - i, &v, &len))
            *epoch = v, have_epoch = true;
        else if (mpscan(p + i, n - i, &lim, &len, NULL, 0) != MPSCAN_OK)
            return false;
        i += len;
    }
    return have_id;
}

static const kt_codec record_codec = {.kind = record_kind, .pack_eos = pack_eos, .key = record_key};

/* ================================ every open stream ====================================== */

static kreader *all_readers;
static kwriter *all_writers;
static bool output_gone; /* a writer's downstream has gone: reading on is pointless */

static void flush_all_writers(void);
static void before_input_wait(void);
static void close_streams_at_exit(void);

static void close_streams_at_exit_once(void) {
    static bool registered;
    if (!registered) atexit(close_streams_at_exit);
    registered = true;
}

/* ================================ reading ================================================ */

struct kreader {
    kt_conn *in;
    uint64_t offset;    /* where the record being decoded starts, on a byte stream */
    uint64_t nrecords;  /* records decoded, hdr included */
    uint64_t ndata;     /* records returned to the stage */
    uint64_t seg_data;  /* of them, since the current segment's hdr (concatenated streams) */
    uint64_t segments;  /* hdr...eos segments ended */
    uint8_t *eos_bytes; /* the last eos, kept while the input is read on past it */
    size_t eos_len;
    msgpack_unpacked unp;
    uint8_t *hdr_bytes; /* the hdr keeps its own copy: it outlives the transport's buffer */
    msgpack_unpacked hdr_unp;
    krec hdr;
    char status[KT_STATUS_MAX];
    bool ended;
    kreader *next_reader;
};

_Noreturn static void truncated(kreader *r) {
    kiln_die(EX_KILN_IO,
             "%s: upstream ended without end-of-stream (did it crash?) after %llu records, "
             "at byte offset %llu",
             r->in->name, (unsigned long long)r->nrecords, (unsigned long long)r->offset);
}

/* Exits 65 naming the record, and on a byte stream where it is. */
_Noreturn static void bad_record(const kreader *r, uint64_t index, uint64_t offset,
                                 const char *why) {
    char at[48] = "";
    if (r->in->type->byte_stream)
        snprintf(at, sizeof at, " at byte offset %llu", (unsigned long long)offset);
    kiln_die(EX_KILN_DATA, "%s: bad record %llu%s: %s", r->in->name, (unsigned long long)index, at,
             why);
}

/* The next whole record's bytes, bounded by the transport.  false on a stop signal. */
static bool next_raw(kreader *r, const uint8_t **p, size_t *n) {
    kt_msg m;
    kt_result res = r->in->type->recv(r->in, &m);
    if (res == KT_STOP) return false;
    r->offset = m.offset;
    /* After a stop signal an upstream that ends without eos was stopped too (`cat a.rec |
     * kiln show` and Ctrl-C): the stream ends as interrupted, not as a crash. */
    if (res == KT_EOF && kiln_stop_signal()) return false;
    if (res == KT_EOF) truncated(r);
    if (res == KT_BAD) bad_record(r, r->nrecords, m.offset, m.why);
    *p = m.p;
    *n = m.n;
    return true;
}

/* Decode raw bytes into rec with unp's zone; exits 65 on anything malformed. */
static void decode(kreader *r, msgpack_unpacked *unp, const uint8_t *p, size_t n, krec *rec) {
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(unp, (const char *)p, n, &off);
    const char *why = NULL;
    if (ret != MSGPACK_UNPACK_SUCCESS || off != n)
        why = "MessagePack does not parse";
    else if (unp->data.type != MSGPACK_OBJECT_MAP)
        why = "record is not a map";
    memset(rec, 0, sizeof *rec);
    rec->map = &unp->data;
    rec->raw = p;
    rec->raw_len = n;
    rec->index = r->nrecords;
    rec->offset = r->offset;
    if (!why) {
        const msgpack_object *t = krec_get(rec, "t"), *seq = krec_get(rec, "seq");
        if (!t || t->type != MSGPACK_OBJECT_STR || t->via.str.size == 0 ||
            t->via.str.size >= sizeof rec->t)
            why = "record has no type 't'";
        else if (!seq || seq->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            why = "record has no sequence number 'seq'";
        else {
            memcpy(rec->t, t->via.str.ptr, t->via.str.size);
            rec->seq = seq->via.u64;
            why = check_tensors(rec->map);
        }
    }
    if (why) bad_record(r, rec->index, rec->offset, why);
    r->nrecords++;
}

kreader *kreader_open(const char *url, int peers) {
    kreader *r = xcalloc(1, sizeof *r);
    kt_opts o = {.peers = peers < 1 ? 1 : peers,
                 .codec = &record_codec,
                 .before_wait = before_input_wait}; /* never sit on output waiting for input */
    r->in = ktransport_for(url)->open_in(url, &o);
    /* A stream from a running process is read to its end after a first stop signal: the
     * upstream got the signal too and is ending its stream (README.md, "Exit codes"). */
    if (r->in->live) kiln_drain_on_stop(true);
    msgpack_unpacked_init(&r->unp);
    msgpack_unpacked_init(&r->hdr_unp);
    r->next_reader = all_readers;
    all_readers = r;
    close_streams_at_exit_once();
    const uint8_t *p;
    size_t n;
    if (!next_raw(r, &p, &n))
        kiln_die(kiln_stop_status(kiln_stop_signal()), "%s: interrupted before the stream began",
                 r->in->name);
    r->hdr_bytes = xmalloc(n);
    memcpy(r->hdr_bytes, p, n);
    decode(r, &r->hdr_unp, r->hdr_bytes, n, &r->hdr);
    if (!krec_is(&r->hdr, "hdr"))
        kiln_die(EX_KILN_DATA, "%s: stream does not start with a hdr record (got '%s')",
                 r->in->name, r->hdr.t);
    uint64_t v;
    if (krec_u64(&r->hdr, "v", &v) && v > KILN_FORMAT_VERSION)
        kiln_die(EX_KILN_DATA, "%s: stream format version %llu is newer than this kiln (%d)",
                 r->in->name, (unsigned long long)v, KILN_FORMAT_VERSION);
    return r;
}

const krec *kreader_hdr(const kreader *r) {
    return &r->hdr;
}

const char *kreader_name(const kreader *r) {
    return r->in->name;
}

/* An eos: its status, and for a clean end its count against what arrived since the
 * segment's hdr. */
static void end_of_segment(kreader *r, const krec *eos) {
    r->segments++;
    if (!kobj_cstr(krec_get(eos, "status"), r->status, sizeof r->status)) strcpy(r->status, "ok");
    uint64_t count;
    if (strcmp(r->status, "ok") == 0 && krec_u64(eos, "count", &count) && count != r->seg_data)
        kiln_die(EX_KILN_IO,
                 "%s: stream %llu: upstream sent %llu records but %llu arrived (records lost)",
                 r->in->name, (unsigned long long)r->segments, (unsigned long long)count,
                 (unsigned long long)r->seg_data);
    r->seg_data = 0;
}

/* After a clean eos on a byte stream: `cat a.rec b.rec` makes several hdr...eos segments,
 * and each is read.  true when another segment begins (its hdr was read); false at the end
 * of input.  Anything else after an eos is not a stream: 65. */
static bool next_segment(kreader *r, krec *out) {
    const uint8_t *p;
    size_t n;
    kt_msg m;
    kt_result res = r->in->type->recv(r->in, &m);
    if (res == KT_EOF || res == KT_STOP) return false;
    if (res == KT_BAD) bad_record(r, r->nrecords, m.offset, m.why);
    r->offset = m.offset;
    p = m.p;
    n = m.n;
    decode(r, &r->unp, p, n, out);
    if (!krec_is(out, "hdr"))
        kiln_die(EX_KILN_DATA,
                 "%s: bad record %llu at byte offset %llu: '%s' after the end of stream %llu "
                 "(a concatenated stream must start with a hdr)",
                 r->in->name, (unsigned long long)out->index, (unsigned long long)out->offset,
                 out->t, (unsigned long long)r->segments);
    return true;
}

bool kreader_next(kreader *r, krec *out) {
    if (r->ended) return false;
    const uint8_t *p;
    size_t n;
    for (;;) {
        if (output_gone || kiln_stop_now() || !next_raw(r, &p, &n)) return false;
        decode(r, &r->unp, p, n, out);
        if (krec_is(out, "hdr")) continue; /* a repeated hdr: skip */
        if (!krec_is(out, "eos")) {
            r->ndata++;
            r->seg_data++;
            return true;
        }
        end_of_segment(r, out);
        /* Only a clean end can be followed by another stream; a byte stream is read to its
         * end to find out.  out stays the eos for the caller (show --all prints it). */
        if (strcmp(r->status, "ok") != 0 || !r->in->type->byte_stream) {
            r->ended = true;
            return false;
        }
        r->eos_bytes = xrealloc(r->eos_bytes, n);
        memcpy(r->eos_bytes, p, n);
        r->eos_len = n;
        if (!next_segment(r, out)) {
            r->ended = true;
            msgpack_unpacked_destroy(&r->unp);
            msgpack_unpacked_init(&r->unp);
            uint64_t index = r->nrecords - 1;
            r->nrecords--;
            decode(r, &r->unp, r->eos_bytes, r->eos_len, out);
            out->index = index;
            return false;
        }
    }
}

const char *kreader_status(const kreader *r) {
    return r->ended ? r->status : NULL;
}

void kreader_close(kreader *r) {
    if (!r) return;
    for (kreader **pp = &all_readers; *pp; pp = &(*pp)->next_reader)
        if (*pp == r) {
            *pp = r->next_reader;
            break;
        }
    r->in->type->close(r->in, !r->ended);
    msgpack_unpacked_destroy(&r->unp);
    msgpack_unpacked_destroy(&r->hdr_unp);
    free(r->hdr_bytes);
    free(r->eos_bytes);
    free(r);
}

/* ================================ writing ================================================ */

/* A record under construction: small packed pieces in `body`, and large tensor data kept
 * by reference as separate segments, so writing a tensor costs no copy. */
typedef struct {
    bool external;
    size_t off, len; /* in body, when !external */
    const void *ptr; /* when external */
} segment;

#define EXTERNAL_MIN 4096 /* bin payloads from this size are referenced, not copied */
#define GONE_PROBE_S 0.01 /* kwriter_gone asks the transport at most this often */

struct kwriter {
    kt_conn *out;
    msgpack_packer pk;
    uint8_t *body;
    size_t body_len, body_cap, seg_start;
    segment *segs;
    size_t nsegs, segs_cap;
    uint32_t nfields;
    char type[32];
    bool building, is_hdr;
    bool gone; /* the downstream has gone: nothing more is written */
    double probed;
    uint64_t seq, count;
    /* hdr: upstream fields to copy at the end, unless this stage set them itself */
    const krec *hdr_upstream;
    char **hdr_keys;
    size_t hdr_nkeys;
    kwriter *next_writer;
};

static int body_write(void *data, const char *buf, size_t len) {
    kwriter *w = data;
    if (w->body_len + len > w->body_cap) {
        size_t cap = w->body_cap ? w->body_cap * 2 : 4096;
        while (cap < w->body_len + len) cap *= 2;
        w->body = xrealloc(w->body, cap);
        w->body_cap = cap;
    }
    memcpy(w->body + w->body_len, buf, len);
    w->body_len += len;
    return 0;
}

static void push_segment(kwriter *w, segment s) {
    if (w->nsegs == w->segs_cap) {
        w->segs_cap = w->segs_cap ? w->segs_cap * 2 : 16;
        w->segs = xrealloc(w->segs, xmul(w->segs_cap, sizeof *w->segs));
    }
    w->segs[w->nsegs++] = s;
}

/* Close the current run of packed bytes as a segment. */
static void cut_body(kwriter *w) {
    if (w->body_len > w->seg_start)
        push_segment(w, (segment){false, w->seg_start, w->body_len - w->seg_start, NULL});
    w->seg_start = w->body_len;
}

static void add_external(kwriter *w, const void *p, size_t n) {
    cut_body(w);
    if (n) push_segment(w, (segment){true, 0, n, p});
}

kwriter *kwriter_open(const char *url, int peers) {
    if ((!url || strcmp(url, "-") == 0) && isatty(1))
        kiln_die(EX_KILN_USAGE, "refusing to write records to a terminal; pipe them into "
                                "'kiln show' (e.g. '... | kiln show')");
    kwriter *w = xcalloc(1, sizeof *w);
    kt_opts o = {.peers = peers < 1 ? 1 : peers, .codec = &record_codec};
    w->out = ktransport_for(url)->open_out(url, &o);
    msgpack_packer_init(&w->pk, w, body_write);
    w->next_writer = all_writers;
    all_writers = w;
    close_streams_at_exit_once();
    return w;
}

/* The downstream closed its end: write nothing more, and let the stage wind down quietly
 * (kwriter_gone, kreader_next, kiln_finish). */
static void downstream_gone(kwriter *w) {
    w->gone = true;
    output_gone = true;
}

static void flush_writer(kwriter *w) {
    if (!w->gone && !w->out->type->flush(w->out)) downstream_gone(w);
}

static void flush_all_writers(void) {
    for (kwriter *w = all_writers; w; w = w->next_writer) flush_writer(w);
}

static void (*input_wait_fn)(void *);
static void *input_wait_ctx;

void kiln_on_input_wait(void (*fn)(void *ctx), void *ctx) {
    input_wait_fn = fn, input_wait_ctx = ctx;
}

static void before_input_wait(void) {
    if (input_wait_fn) input_wait_fn(input_wait_ctx);
    flush_all_writers();
}

void kwriter_begin(kwriter *w, const char *type) {
    if (w->building) kiln_die(EX_KILN_SOFTWARE, "record '%s' begun inside '%s'", type, w->type);
    if (strcmp(type, "eos") == 0)
        kiln_die(EX_KILN_SOFTWARE, "an eos is written by kwriter_close, not built");
    w->building = true;
    w->is_hdr = false;
    snprintf(w->type, sizeof w->type, "%s", type);
    w->body_len = w->seg_start = 0;
    w->nsegs = 0;
    w->nfields = 0;
}

void kw_key(kwriter *w, const char *key) {
    size_t n = strlen(key);
    w->nfields++;
    msgpack_pack_str(&w->pk, n);
    msgpack_pack_str_body(&w->pk, key, n);
    if (w->is_hdr) {
        w->hdr_keys = xrealloc(w->hdr_keys, xmul(w->hdr_nkeys + 1, sizeof *w->hdr_keys));
        w->hdr_keys[w->hdr_nkeys++] = xstrdup(key);
    }
}

msgpack_packer *kw_packer(kwriter *w) {
    return &w->pk;
}

void kw_strn(kwriter *w, const char *key, const char *s, size_t n) {
    kw_key(w, key);
    msgpack_pack_str(&w->pk, n);
    msgpack_pack_str_body(&w->pk, s, n);
}

void kw_str(kwriter *w, const char *key, const char *s) {
    kw_strn(w, key, s, strlen(s));
}

void kw_u64(kwriter *w, const char *key, uint64_t v) {
    kw_key(w, key);
    msgpack_pack_uint64(&w->pk, v);
}

void kw_i64(kwriter *w, const char *key, int64_t v) {
    kw_key(w, key);
    msgpack_pack_int64(&w->pk, v);
}

void kw_f64(kwriter *w, const char *key, double v) {
    kw_key(w, key);
    msgpack_pack_double(&w->pk, v);
}

void kw_bool(kwriter *w, const char *key, bool v) {
    kw_key(w, key);
    if (v)
        msgpack_pack_true(&w->pk);
    else
        msgpack_pack_false(&w->pk);
}

static void pack_bin_ref(kwriter *w, const void *p, size_t n) {
    msgpack_pack_bin(&w->pk, n);
    if (n >= EXTERNAL_MIN)
        add_external(w, p, n);
    else
        msgpack_pack_bin_body(&w->pk, p, n);
}

void kw_tensor_value(kwriter *w, const ktensor *t) {
    uint64_t want;
    if (!ktensor_expected_bytes(t, &want) || want != t->nbytes)
        kiln_die(EX_KILN_SOFTWARE, "record '%s': tensor size does not match its shape", w->type);
    const char *dn = kdtype_name(t->dtype);
    msgpack_pack_map(&w->pk, 3);
    msgpack_pack_str(&w->pk, 5);
    msgpack_pack_str_body(&w->pk, "dtype", 5);
    msgpack_pack_str(&w->pk, strlen(dn));
    msgpack_pack_str_body(&w->pk, dn, strlen(dn));
    msgpack_pack_str(&w->pk, 5);
    msgpack_pack_str_body(&w->pk, "shape", 5);
    msgpack_pack_array(&w->pk, (size_t)t->ndim);
    for (int i = 0; i < t->ndim; i++) msgpack_pack_uint64(&w->pk, t->shape[i]);
    msgpack_pack_str(&w->pk, 4);
    msgpack_pack_str_body(&w->pk, "data", 4);
    pack_bin_ref(w, t->data, t->nbytes);
}

void kw_tensor(kwriter *w, const char *key, const ktensor *t) {
    kw_key(w, key);
    kw_tensor_value(w, t);
}

/* msgpack_pack_object, except that large bin payloads are referenced, not copied. */
static void pack_obj(kwriter *w, const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_BIN:
        pack_bin_ref(w, o->via.bin.ptr, o->via.bin.size);
        break;
    case MSGPACK_OBJECT_ARRAY:
        msgpack_pack_array(&w->pk, o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size; i++) pack_obj(w, &o->via.array.ptr[i]);
        break;
    case MSGPACK_OBJECT_MAP:
        msgpack_pack_map(&w->pk, o->via.map.size);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            pack_obj(w, &o->via.map.ptr[i].key);
            pack_obj(w, &o->via.map.ptr[i].val);
        }
        break;
    default:
        msgpack_pack_object(&w->pk, *o);
    }
}

void kw_obj(kwriter *w, const char *key, const msgpack_object *o) {
    kw_key(w, key);
    pack_obj(w, o);
}

static bool hdr_key_set(const kwriter *w, const msgpack_object *k) {
    for (size_t i = 0; i < w->hdr_nkeys; i++)
        if (kobj_str_eq(k, w->hdr_keys[i])) return true;
    return false;
}

void kwriter_hdr_begin(kwriter *w, const krec *upstream, const char *schema, uint64_t seed) {
    kwriter_begin(w, "hdr");
    w->is_hdr = true;
    w->hdr_upstream = upstream;
    kw_u64(w, "v", KILN_FORMAT_VERSION);
    kw_str(w, "stage", kiln_prog());
    if (schema) kw_str(w, "schema", schema); /* else the upstream's, copied at the end */
    kw_u64(w, "seed", seed);
    /* chain: the upstream's chain, then this stage */
    const msgpack_object *chain = upstream ? krec_get(upstream, "chain") : NULL;
    uint32_t n = chain && chain->type == MSGPACK_OBJECT_ARRAY ? chain->via.array.size : 0;
    if (n >= KILN_MAX_CONTAINER) n = KILN_MAX_CONTAINER - 1;
    kw_key(w, "chain");
    msgpack_pack_array(&w->pk, n + 1);
    for (uint32_t i = 0; i < n; i++) pack_obj(w, &chain->via.array.ptr[i]);
    msgpack_pack_str(&w->pk, strlen(kiln_prog()));
    msgpack_pack_str_body(&w->pk, kiln_prog(), strlen(kiln_prog()));
}

/* hdr fields of the upstream this stage did not set: copied forward unchanged. */
static void copy_upstream_hdr_fields(kwriter *w) {
    const msgpack_object *m = w->hdr_upstream ? w->hdr_upstream->map : NULL;
    for (uint32_t i = 0; m && i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR || kobj_str_eq(k, "t") || kobj_str_eq(k, "seq") ||
            hdr_key_set(w, k))
            continue;
        w->nfields++;
        pack_obj(w, k);
        pack_obj(w, &m->via.map.ptr[i].val);
    }
    for (size_t i = 0; i < w->hdr_nkeys; i++) free(w->hdr_keys[i]);
    w->hdr_nkeys = 0;
    w->hdr_upstream = NULL;
}

/* Records that come in floods and are worth gathering; all others (hdr, metrics, ckpt,
 * saved, err, eos...) are written at once. */
static bool bulk_type(const char *t) {
    return !strcmp(t, "sample") || !strcmp(t, "tokens") || !strcmp(t, "batch") ||
           !strcmp(t, "pref");
}

/* Hand the finished record to the transport as head + segments, tensor data by reference. */
static void send_record(kwriter *w, uint64_t seq, bool is_hdr) {
    uint8_t head[64];
    size_t headlen = pack_head(head, w->nfields, w->type, seq), total = headlen;
    struct iovec stackv[64], *iov = stackv;
    if (w->nsegs + 1 > 64) iov = xmalloc(xmul(w->nsegs + 1, sizeof *iov));
    iov[0] = (struct iovec){head, headlen};
    for (size_t i = 0; i < w->nsegs; i++) {
        const segment *s = &w->segs[i];
        iov[i + 1].iov_base = s->external ? (void *)s->ptr : (void *)(w->body + s->off);
        iov[i + 1].iov_len = s->len;
        total += s->len;
    }
    kt_kind kind = is_hdr ? KT_HDR : bulk_type(w->type) ? KT_BULK : KT_DATA;
    if (!w->out->type->send(w->out, iov, (int)w->nsegs + 1, total, kind))
        downstream_gone(w);
    else if (!is_hdr)
        w->count++;
    if (iov != stackv) free(iov);
}

void kwriter_end(kwriter *w) {
    if (!w->building) kiln_die(EX_KILN_SOFTWARE, "kwriter_end without kwriter_begin");
    if (w->is_hdr) copy_upstream_hdr_fields(w);
    bool is_hdr = strcmp(w->type, "hdr") == 0;
    uint64_t seq = is_hdr ? 0 : ++w->seq;
    cut_body(w);
    w->building = false;
    if (!w->gone) send_record(w, seq, is_hdr);
}

void kwriter_pass(kwriter *w, const krec *r) {
    kwriter_begin(w, r->t);
    const msgpack_object *m = r->map;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (kobj_str_eq(k, "t") || kobj_str_eq(k, "seq")) continue;
        w->nfields++;
        pack_obj(w, k);
        pack_obj(w, &m->via.map.ptr[i].val);
    }
    kwriter_end(w);
}

void kwriter_flush(kwriter *w) {
    flush_writer(w);
}

uint64_t kwriter_count(const kwriter *w) {
    return w->count;
}

bool kwriter_gone(kwriter *w) {
    double now = kiln_now();
    if (w->gone || now - w->probed < GONE_PROBE_S) return w->gone;
    w->probed = now;
    if (w->out->type->gone(w->out)) downstream_gone(w);
    return w->gone;
}

static void free_writer(kwriter *w) {
    free(w->body);
    free(w->segs);
    for (size_t i = 0; i < w->hdr_nkeys; i++) free(w->hdr_keys[i]);
    free(w->hdr_keys);
    free(w);
}

void kwriter_close(kwriter *w, const char *status) {
    if (!w) return;
    if (w->building) kiln_die(EX_KILN_SOFTWARE, "record '%s' not finished at close", w->type);
    for (kwriter **pp = &all_writers; *pp; pp = &(*pp)->next_writer)
        if (*pp == w) {
            *pp = w->next_writer;
            break;
        }
    if (w->gone)
        w->out->type->close(w->out, false); /* nobody is left to read an eos */
    else if (!w->out->type->finish(w->out, status, w->seq + 1))
        output_gone = true;
    free_writer(w);
}

/* A stage that exits without closing its streams (an error, `kiln show | head`) still ends
 * them as well as it can: records already gathered go out, and ZeroMQ senders learn that
 * their receiver stopped (as a closed pipe tells its writer) instead of waiting for credit
 * forever.  The kreader and kwriter stay listed, so nothing shows as leaked. */
static void close_streams_at_exit(void) {
    for (kwriter *w = all_writers; w; w = w->next_writer)
        if (w->out) {
            w->out->type->close(w->out, true);
            w->out = NULL;
        }
    for (kreader *r = all_readers; r; r = r->next_reader)
        if (r->in) {
            r->in->type->close(r->in, !r->ended);
            r->in = NULL;
        }
}

void kiln_finish(kreader *r, kwriter *w) {
    int sig = kiln_stop_signal();
    const char *up = r ? kreader_status(r) : "ok";
    const char *status = sig ? "interrupted" : (up && strcmp(up, "ok") != 0 ? up : "ok");
    bool up_failed = !sig && up && strcmp(up, "error") == 0 && !output_gone;
    if (up_failed)
        kiln_warn("%s: the upstream failed (its end of stream says error)", kreader_name(r));
    kwriter_close(w, status); /* without an eos when the downstream has gone */
    kreader_close(r);
    exit(sig ? kiln_stop_status(sig) : up_failed ? EX_KILN_IO : EX_KILN_OK);
}

void kiln_fail(kreader *r, kwriter *w, int code, const char *msg) {
    kiln_warn("%s", msg);
    if (w) kwriter_close(w, "error");
    kreader_close(r);
    exit(code);
}

void kiln_stdout_failed(void) {
    int err = errno;
    if (err == EPIPE || kt_fd_reader_gone(1)) exit(EX_KILN_OK);
    kiln_die(EX_KILN_IO, "stdout: write error: %s", strerror(err));
}

int kreader_finish_for_file(kreader *r, const char *what) {
    int sig = kiln_stop_signal();
    const char *status = kreader_status(r);
    char upstream[32];
    snprintf(upstream, sizeof upstream, "%s", status ? status : "(none)"); /* r owns status */
    kreader_close(r);
    if (sig) return kiln_stop_status(sig);
    if (strcmp(upstream, "ok") != 0)
        kiln_die(EX_KILN_DATA, "upstream ended with status %s: no %s written", upstream, what);
    return 0;
}
