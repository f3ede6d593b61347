/* kiln-batch — token sequences into training batches: x, y (x shifted by one), mask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/options.h"
#include "data/sample.h"
#include "data/tokenizer.h"
#include "core/util.h"

static const kopt_info HELP = {
    .about = "group token sequences into [B,T] training batches",
    .usage = "kiln batch -B ROWS -T LEN [--pack] [--ordered] [--drop-last]",
    .notes =
        "Each batch: x I32 [B,T], y I32 [B,T] (y[b,t] = the token after x[b,t]), mask U8 [B,T]\n"
        "(1 = y[b,t] counts in the loss; 0 on padding and where the tokens record's own mask\n"
        "is 0), cursor (sample records consumed so far, counted from the hdr's `skip` that\n"
        "kiln load --skip writes: resume with kiln load --skip CURSOR;\n"
        "with --pack a record split across batches counts once it has started), epoch.\n"
        "example:\n"
        "  kiln load text:examples/data/moby-dick.txt | kiln tokenize --bytes \\\n"
        "    | kiln batch -B 4 -T 64 --pack | kiln show\n",
};

typedef struct batcher {
    uint64_t B, T;
    bool pack, drop_last;
    int32_t pad, eos;
    kwriter *w;
    int32_t *x, *y;
    uint8_t *mask;
    uint64_t rows; /* rows filled in the current batch */
    uint64_t cursor, epoch;
    uint64_t shard_i, shard_n, index; /* --shard: this process writes batches i = I mod N */
    /* --pack: tokens waiting to fill rows, and their loss mask */
    int32_t *stream;
    uint8_t *smask;
    size_t slen, scap;
    bool warned_long;
} batcher;

static void emit_batch(batcher *b) {
    if (b->rows == 0) return;
    for (uint64_t r = b->rows; r < b->B; r++) { /* a short final batch: padding rows */
        for (uint64_t t = 0; t < b->T; t++) b->x[r * b->T + t] = b->y[r * b->T + t] = b->pad;
        memset(b->mask + r * b->T, 0, b->T);
    }
    ktensor x = ktensor_2d(KT_I32, b->x, b->B, b->T), y = ktensor_2d(KT_I32, b->y, b->B, b->T);
    ktensor m = ktensor_2d(KT_U8, b->mask, b->B, b->T);
    if (b->index++ % b->shard_n != b->shard_i) { /* another rank's batch (--shard) */
        b->rows = 0;
        return;
    }
    kwriter_begin(b->w, "batch");
    kw_tensor(b->w, "x", &x);
    kw_tensor(b->w, "y", &y);
    kw_tensor(b->w, "mask", &m);
    kw_u64(b->w, "cursor", b->cursor);
    kw_u64(b->w, "epoch", b->epoch);
    kwriter_end(b->w);
    b->rows = 0;
}

/* One row from n tokens (mask may be NULL = all 1): x = tok[0..T), y = tok[1..T+1). */
static void add_row(batcher *b, const int32_t *tok, const uint8_t *mask, size_t n) {
    uint64_t T = b->T;
    int32_t *x = b->x + b->rows * T, *y = b->y + b->rows * T;
    uint8_t *m = b->mask + b->rows * T;
    for (uint64_t t = 0; t < T; t++) {
        x[t] = t < n ? tok[t] : b->pad;
        bool target = t + 1 < n;
        y[t] = target ? tok[t + 1] : b->pad;
        m[t] = target && (!mask || mask[t + 1]);
    }
    if (++b->rows == b->B) emit_batch(b);
}

/* The sequence (tokens as little-endian I32 bytes, as the record holds them) joins the
 * packed stream a row's worth at a time, so the stream never holds more than about two rows
 * whatever the record's length: memory bounded by -T, not by the longest record. */
static void pack_tokens(batcher *b, const uint8_t *tok, const uint8_t *mask, size_t n) {
    int32_t last = 0;
    if (n) memcpy(&last, tok + (n - 1) * sizeof last, sizeof last);
    bool add_eos = n == 0 || last != b->eos;
    size_t done = 0, piece = (size_t)b->T + 1;
    for (;;) {
        size_t take = n - done < piece ? n - done : piece, need = b->slen + take + 1;
        if (need > b->scap) {
            b->scap = need;
            b->stream = xrealloc(b->stream, xmul(b->scap, sizeof *b->stream));
            b->smask = xrealloc(b->smask, b->scap);
        }
        memcpy(b->stream + b->slen, tok + done * sizeof *b->stream, take * sizeof *b->stream);
        if (mask)
            memcpy(b->smask + b->slen, mask + done, take);
        else
            memset(b->smask + b->slen, 1, take);
        b->slen += take;
        done += take;
        if (done == n && add_eos) b->stream[b->slen] = b->eos, b->smask[b->slen++] = 1;
        /* Full rows of T+1 tokens; the last token of a row starts the next. */
        size_t at = 0;
        while (b->slen - at >= b->T + 1) {
            add_row(b, b->stream + at, b->smask + at, b->T + 1);
            at += b->T;
        }
        memmove(b->stream, b->stream + at, (b->slen - at) * sizeof *b->stream);
        memmove(b->smask, b->smask + at, b->slen - at);
        b->slen -= at;
        if (done == n) break;
    }
}

static void add_tokens(batcher *b, const krec *r) {
    ktensor t, mt;
    if (!krec_tensor(r, "tokens", &t) || t.dtype != KT_I32 || t.ndim != 1)
        kiln_die(EX_KILN_DATA, "record %llu: tokens is not an I32 [n] tensor",
                 (unsigned long long)r->seq);
    size_t n = (size_t)t.shape[0];
    const uint8_t *mask = NULL;
    if (krec_get(r, "mask")) {
        if (!krec_tensor(r, "mask", &mt) || mt.dtype != KT_U8 || mt.ndim != 1 || mt.shape[0] != n)
            kiln_die(EX_KILN_DATA, "record %llu: mask is not a U8 [n] tensor like tokens",
                     (unsigned long long)r->seq);
        mask = mt.data;
    }
    b->cursor++;
    b->epoch = krec_u64_or(r, "epoch", b->epoch);
    if (b->pack) {
        pack_tokens(b, t.data, mask, n);
    } else {
        if (n > b->T + 1 && !b->warned_long) {
            kiln_warn("sequences longer than -T + 1 = %llu tokens are cut (first: record %llu, "
                      "%zu tokens)",
                      (unsigned long long)b->T + 1, (unsigned long long)r->seq, n);
            b->warned_long = true;
        }
        size_t keep = n < b->T + 1 ? n : (size_t)b->T + 1; /* a row reads no more */
        int32_t *tok = xmalloc(xmul(keep ? keep : 1, sizeof *tok));
        if (keep) memcpy(tok, t.data, keep * sizeof *tok);
        add_row(b, tok, mask, keep);
        free(tok);
    }
}

/* ---- the reorder buffer: a binary min-heap on (epoch, id) ------------------------------- */

typedef struct reorder {
    kstored **heap;
    size_t n, cap;
    uint64_t bytes;               /* of the records held */
    uint64_t next_epoch, next_id; /* the key expected next */
} reorder;

static bool key_less(const krec *a, const krec *b) {
    uint64_t ea = krec_u64_or(a, "epoch", 0), eb = krec_u64_or(b, "epoch", 0);
    if (ea != eb) return ea < eb;
    return krec_u64_or(a, "id", 0) < krec_u64_or(b, "id", 0);
}

static void heap_swap(reorder *q, size_t i, size_t j) {
    kstored *t = q->heap[i];
    q->heap[i] = q->heap[j];
    q->heap[j] = t;
}

static void reorder_push(reorder *q, const krec *r) {
    if (q->n == q->cap)
        q->heap = xrealloc(q->heap, xmul(q->cap = q->cap ? q->cap * 2 : 256, sizeof(kstored *)));
    size_t i = q->n++;
    q->heap[i] = kstored_copy(r);
    q->bytes += r->raw_len;
    while (i > 0 && key_less(&q->heap[i]->rec, &q->heap[(i - 1) / 2]->rec)) {
        heap_swap(q, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static kstored *reorder_pop(reorder *q) {
    kstored *top = q->heap[0];
    q->heap[0] = q->heap[--q->n];
    q->bytes -= top->rec.raw_len;
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->n && key_less(&q->heap[l]->rec, &q->heap[m]->rec)) m = l;
        if (r < q->n && key_less(&q->heap[r]->rec, &q->heap[m]->rec)) m = r;
        if (m == i) break;
        heap_swap(q, i, m);
        i = m;
    }
    q->next_epoch = krec_u64_or(&top->rec, "epoch", 0);
    q->next_id = krec_u64_or(&top->rec, "id", 0) + 1;
    return top;
}

/* The top may leave when it is the key expected next, or when the buffer is full: more
 * than window records or more than max_bytes of them. */
static bool reorder_ready(const reorder *q, size_t window, uint64_t max_bytes) {
    if (q->n == 0) return false;
    const krec *top = &q->heap[0]->rec;
    return q->n > window || q->bytes > max_bytes ||
           (krec_u64_or(top, "epoch", 0) == q->next_epoch &&
            krec_u64_or(top, "id", 0) == q->next_id);
}

/* ---- main ------------------------------------------------------------------------------- */

static void consume(batcher *b, const krec *r) {
    if (krec_is(r, "tokens"))
        add_tokens(b, r);
    else {
        if (krec_is(r, "err") || krec_is(r, "sample"))
            b->cursor++; /* a position in load's stream */
        kwriter_pass(b->w, r);
    }
}

static bool is_data(const krec *r) {
    return krec_is(r, "tokens") || krec_is(r, "err") || krec_is(r, "sample");
}

typedef struct options {
    bool ordered, have_pad;
    uint64_t window, window_bytes, pad;
} options;

static bool shard_option(void *dest, const char *arg, char *err, size_t errsz) {
    batcher *b = dest;
    return kopt_parse_shard(arg, &b->shard_i, &b->shard_n, err, errsz);
}

static void parse_options(int argc, char **argv, kiln_cli *cli, batcher *b, options *o) {
    *o = (options){.window = 4096, .window_bytes = 256ull << 20};
    kopt rows[] = {
        KOPT_U64('B', "batch", &b->B, "ROWS", 1, 1u << 20, "rows per batch",
                 .flags = KOPT_REQUIRED),
        KOPT_U64('T', "ctx", &b->T, "LEN", 1, 1u << 24, "tokens per row", .flags = KOPT_REQUIRED),
        KOPT_BOOL(0, "pack", &b->pack,
                  "language modelling: join the sequences (each ending with EOS) into one "
                  "stream and cut it into full rows; row r+1 starts where row r's targets end, "
                  "so no token is wasted\n"
                  "(default: one sequence a row, cut to LEN+1 tokens, padded with PAD; an image "
                  "of H*W*C pixels + class token fits -T H*W*C exactly)"),
        KOPT_BOOL(0, "ordered", &o->ordered,
                  "restore (epoch, id) order first, e.g. after parallel workers fanned in; exact "
                  "while records arrive less than --window apart"),
        KOPT_U64(0, "window", &o->window, "N", 0, UINT64_MAX,
                 "records the reorder buffer holds (default 4096)"),
        KOPT_U64(0, "window-bytes", &o->window_bytes, "BYTES", 1, UINT64_MAX,
                 "bytes of records the reorder buffer holds (default 268435456, 256 MiB): "
                 "large records leave in order sooner"),
        KOPT_BOOL(0, "drop-last", &b->drop_last,
                  "drop a final partial batch (default: pad it, mask 0)"),
        KOPT_CALL(0, "shard", b, shard_option, "I/N",
                  "write only batches i with i mod N = I (from 0), each with the cursor of "
                  "the whole stream: N data-parallel ranks (mpirun; README) read one stream "
                  "and resume from one cursor"),
        KOPT_U64(0, "pad", &o->pad, "ID", 0, INT32_MAX,
                 "pad token when the hdr has no tokenizer (default 0)", .given = &o->have_pad),
        KOPT_STREAM(cli),
        KOPT_END(),
    };
    kiln_cli_parse(cli, rows, argc, argv);
    if (b->B * b->T > (1u << 28)) kiln_usage_error("-B ROWS times -T LEN must be at most 2^28");
}

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    batcher b = {.shard_n = 1};
    options o;
    parse_options(argc, argv, &cli, &b, &o);
    bool ordered = o.ordered;
    size_t window = o.window;

    kreader *r = kiln_cli_reader(&cli);
    b.w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    ktokenizer tok;
    char err[256];
    const msgpack_object *desc = krec_get(hdr, "tokenizer");
    if (desc) {
        if (!ktok_from_obj(desc, &tok, err, sizeof err)) kiln_die(EX_KILN_DATA, "hdr: %s", err);
        b.pad = (int32_t)tok.pad, b.eos = (int32_t)tok.eos;
        ktok_free(&tok);
    } else if (b.pack && !o.have_pad) {
        kiln_die(EX_KILN_DATA, "hdr has no tokenizer: --pack needs EOS (run kiln tokenize)");
    }
    if (o.have_pad) b.pad = (int32_t)o.pad;
    b.x = xmalloc(xmul(b.B * b.T, sizeof(int32_t)));
    b.y = xmalloc(xmul(b.B * b.T, sizeof(int32_t)));
    b.mask = xmalloc(b.B * b.T);
    kwriter_hdr_begin(b.w, hdr, "batch", krec_u64_or(hdr, "seed", 0));
    kwriter_end(b.w);
    /* After kiln load --skip K the cursor counts from K: a resumed run saves positions in
     * the whole stream, so a second resume skips to the right place too. */
    b.cursor = krec_u64_or(hdr, "skip", 0);

    reorder q = {0};
    krec rec;
    while (!kwriter_gone(b.w) && kreader_next(r, &rec)) {
        if (!ordered || !is_data(&rec)) {
            consume(&b, &rec);
        } else {
            reorder_push(&q, &rec);
            while (reorder_ready(&q, window, o.window_bytes)) {
                kstored *s = reorder_pop(&q);
                consume(&b, &s->rec);
                kstored_free(s);
            }
        }
        if (kiln_stop_now()) break;
    }
    bool clean_end = !kiln_stop_signal() && kreader_status(r);
    while (clean_end && q.n > 0 && !kwriter_gone(b.w)) {
        kstored *s = reorder_pop(&q);
        consume(&b, &s->rec);
        kstored_free(s);
    }
    while (q.n > 0) kstored_free(q.heap[--q.n]);
    free(q.heap);
    if (clean_end && b.pack && b.slen > 1) add_row(&b, b.stream, b.smask, b.slen);
    if (clean_end && !b.drop_last && !kwriter_gone(b.w)) emit_batch(&b);
    free(b.x), free(b.y), free(b.mask), free(b.stream), free(b.smask);
    kiln_finish(r, b.w);
}
