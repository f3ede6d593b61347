/* kiln-pairs — token records in, `pairs` batches out for contrastive training
 * (lib/run/contrastive.h): anchors and positives from columns, from a shared label, or a
 * sentence and the paragraph it came from. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "data/pairs.h"
#include "data/sample.h"
#include "stream/options.h"

static const kopt_info HELP = {
    .about = "make anchor/positive pairs batches for contrastive training",
    .usage = "kiln pairs (-B PAIRS | --side anchor|positive) [-T LEN]\n"
             "                  (--columns | --by-label | --cloze) [--seed S]",
    .notes =
        "Each output record: anchor, positive I32 [B,T] and their masks U8 [B,T] (1 = a token;\n"
        "rows are right-padded), optionally negative [B*K,T] with negative_mask, anchor_id I64\n"
        "[B], cursor (token records consumed, as kiln batch counts it).  No two pairs of a batch\n"
        "share an anchor (or, --by-label, a label): in-batch negatives are real negatives.  A\n"
        "pair that would repeat one waits for the next batch.  --per-label N lets N pairs of a\n"
        "label into one batch and writes group I64 [B] (the label's hash): the loss leaves\n"
        "pairs of one group out of each other's negatives (lib/run/contrastive.h).\n"
        "  --columns    records with token tensors anchor and positive (and negative), as\n"
        "               `kiln tokenize --fields` makes them; sentence-transformers' names work\n"
        "               too: query/question/sentence1, pos/answer/sentence2, neg\n"
        "  --by-label   two records with the same label make a pair (classes, one emoji in\n"
        "               two styles)\n"
        "  --cloze      a text's sentence is the anchor, the text without it the positive\n"
        "               (inverse cloze task); texts with fewer than 2 sentences are skipped\n"
        "example:\n"
        "  kiln load jsonl:pairs.jsonl | kiln tokenize --bytes --fields anchor,positive \\\n"
        "    | kiln pairs -B 32 --columns | kiln train --objective contrastive --init base.st\n",
};

enum { MAX_NEG = 8, MAX_HELD = 4096 };

typedef ktoken_row row;

typedef struct pair {
    row anchor, positive, neg[MAX_NEG];
    int nneg;
    int64_t id;
    uint64_t key; /* what must not repeat in a batch */
} pair;

typedef struct pairer {
    int B, T, per_label;
    const char *side; /* --side: one side as tokens records instead of batches */
    uint64_t seed, cursor;
    kwriter *w;
    pair held[MAX_HELD];
    int nheld;
    kstored *by_label[MAX_HELD]; /* --by-label: records waiting for a partner */
    int nwait;
} pairer;

static uint64_t fnv(const void *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)p)[i]) * 0x100000001b3ull;
    return h;
}

static row take_row(const int32_t *tok, size_t n, int T) {
    row r = {.len = n < (size_t)T ? (int)n : T};
    r.tok = xmalloc(sizeof(int32_t) * (size_t)(r.len ? r.len : 1));
    memcpy(r.tok, tok, sizeof(int32_t) * (size_t)r.len);
    return r;
}

/* A token tensor field as a row; false when absent. */
static bool field_row(const krec *r, const char *const *names, int T, row *out) {
    for (; *names; names++) {
        ktensor t;
        if (!krec_get(r, *names)) continue;
        if (!krec_tensor(r, *names, &t) || t.dtype != KT_I32 || t.ndim != 1 || !t.shape[0])
            kiln_die(EX_KILN_DATA, "record %llu: %s is not a non-empty I32 token row",
                     (unsigned long long)r->seq, *names);
        int32_t *tmp = xmalloc(xmul((size_t)t.shape[0], sizeof(int32_t)));
        ktensor_copy(&t, tmp);
        *out = take_row(tmp, (size_t)t.shape[0], T);
        free(tmp);
        return true;
    }
    return false;
}

static void free_pair(pair *p) {
    free(p->anchor.tok), free(p->positive.tok);
    for (int i = 0; i < p->nneg; i++) free(p->neg[i].tok);
}

/* --side anchor|positive: the pair's one side as a tokens record with the pair's id, for
 * retrieval evaluation (queries and corpus with matching ids). */
static void write_side(pairer *P, pair *p) {
    const row *r = !strcmp(P->side, "anchor") ? &p->anchor : &p->positive;
    ktensor t = ktensor_1d(KT_I32, r->tok, (size_t)r->len);
    kwriter_begin(P->w, "tokens");
    kw_i64(P->w, "id", p->id);
    kw_tensor(P->w, "tokens", &t);
    kwriter_end(P->w);
    free_pair(p);
}

static void hold(pairer *P, pair *p) {
    if (P->side) {
        write_side(P, p);
        return;
    }
    if (P->nheld == MAX_HELD)
        kiln_die(EX_KILN_DATA,
                 "%d pairs wait for a batch without a repeated anchor: the "
                 "data repeats one anchor too often",
                 MAX_HELD);
    P->held[P->nheld++] = *p;
}

/* ---- writing batches ---------------------------------------------------------------------- */

/* The batch of pairs ps[0..n): anchors, positives, and K negatives each (the fewest any has). */
static void write_batch(pairer *P, pair *const *ps, int n) {
    int K = MAX_NEG;
    for (int i = 0; i < n; i++) K = ps[i]->nneg < K ? ps[i]->nneg : K;
    ktoken_row *a = xcalloc((size_t)n, sizeof *a), *b = xcalloc((size_t)n, sizeof *b);
    ktoken_row *c = xcalloc((size_t)(n * K + 1), sizeof *c);
    int64_t *ids = xcalloc((size_t)n, sizeof *ids), *group = xcalloc((size_t)n, sizeof *group);
    for (int i = 0; i < n; i++) {
        a[i] = ps[i]->anchor, b[i] = ps[i]->positive, ids[i] = ps[i]->id;
        group[i] = (int64_t)ps[i]->key;
        for (int j = 0; j < K; j++) c[i * K + j] = ps[i]->neg[j];
    }
    kpairs_write(P->w, a, b, n, c, K, ids, P->per_label > 1 ? group : NULL, P->cursor);
    free(a), free(b), free(c), free(ids), free(group);
}

/* Batches of B held pairs with no key more than per_label times, in the order they came; with
 * `all`, also the last smaller batch (two pairs at least: one has no negatives to learn
 * from). */
static void emit(pairer *P, bool all) {
    while (P->nheld && P->B) {
        pair *batch[4096];
        int n = 0, keep = 0;
        bool taken[MAX_HELD] = {0};
        for (int i = 0; i < P->nheld && n < P->B; i++) {
            int seen = 0;
            for (int j = 0; j < n; j++) seen += batch[j]->key == P->held[i].key;
            if (seen < P->per_label) batch[n++] = &P->held[i], taken[i] = true;
        }
        if (n < P->B && !(all && n >= 2)) return;
        write_batch(P, batch, n);
        for (int i = 0; i < P->nheld; i++) {
            if (taken[i])
                free_pair(&P->held[i]);
            else
                P->held[keep++] = P->held[i];
        }
        P->nheld = keep;
    }
}

/* ---- making pairs ------------------------------------------------------------------------- */

static int64_t id_of(const krec *r) {
    return (int64_t)krec_u64_or(r, "id", r->seq);
}

static void from_columns(pairer *P, const krec *r) {
    static const char *const anchor[] = {"anchor", "query", "question", "sentence1", NULL};
    static const char *const positive[] = {"positive",  "pos",      "answer",
                                           "sentence2", "document", NULL};
    static const char *const negative[] = {"negative", "neg", "hard_negative", NULL};
    pair p = {.id = id_of(r)};
    if (!field_row(r, anchor, P->T, &p.anchor)) return;
    if (!field_row(r, positive, P->T, &p.positive))
        kiln_die(EX_KILN_DATA,
                 "record %llu: an anchor without a positive (tokenize both with "
                 "--fields)",
                 (unsigned long long)r->seq);
    if (field_row(r, negative, P->T, &p.neg[0])) p.nneg = 1;
    p.key = fnv(p.anchor.tok, sizeof(int32_t) * (size_t)p.anchor.len);
    hold(P, &p);
}

static void from_label(pairer *P, const krec *r) {
    const char *lab, *other;
    size_t n, m;
    ktensor t;
    if (!krec_str(r, "label", &lab, &n) || !krec_tensor(r, "tokens", &t)) return;
    for (int i = 0; i < P->nwait; i++) {
        if (!krec_str(&P->by_label[i]->rec, "label", &other, &m) || m != n || memcmp(lab, other, n))
            continue;
        static const char *const tokens[] = {"tokens", NULL};
        pair p = {.id = id_of(&P->by_label[i]->rec), .key = fnv(lab, n)};
        field_row(&P->by_label[i]->rec, tokens, P->T, &p.anchor);
        field_row(r, tokens, P->T, &p.positive);
        kstored_free(P->by_label[i]);
        P->by_label[i] = P->by_label[--P->nwait];
        hold(P, &p);
        return;
    }
    if (P->nwait == MAX_HELD)
        kiln_die(EX_KILN_DATA,
                 "%d records wait for a partner of their "
                 "label: are the labels all different?",
                 MAX_HELD);
    P->by_label[P->nwait++] = kstored_copy(r);
}

/* Sentence ends: '.', '!' or '?' followed by a space or a newline (byte tokens). */
static int split_sentences(const int32_t *t, int n, int *ends, int cap) {
    int k = 0;
    for (int i = 0; i + 1 < n && k < cap; i++)
        if ((t[i] == '.' || t[i] == '!' || t[i] == '?') && (t[i + 1] == ' ' || t[i + 1] == '\n'))
            ends[k++] = i + 2;
    if (k < cap && (k == 0 || ends[k - 1] < n)) ends[k++] = n;
    return k;
}

static void from_cloze(pairer *P, const krec *r) {
    ktensor t;
    if (!krec_tensor(r, "tokens", &t) || t.dtype != KT_I32 || t.ndim != 1) return;
    int n = (int)t.shape[0], ends[256];
    int32_t *tok = xmalloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    ktensor_copy(&t, tok);
    int eos = n && tok[n - 1] > 255 ? 1 : 0; /* the tokenizer's EOS ends each piece again */
    int k = split_sentences(tok, n - eos, ends, 256);
    if (k >= 2) {
        krng g;
        krng_init(&g, P->seed, (uint64_t)id_of(r), 0, KRNG_PAIRS);
        int s = (int)krng_below(&g, (uint64_t)k), from = s ? ends[s - 1] : 0, to = ends[s];
        int32_t *rest = xmalloc(sizeof(int32_t) * (size_t)n),
                *sent = xmalloc(sizeof(int32_t) * (size_t)n);
        int ns = to - from, nr = 0;
        memcpy(sent, tok + from, sizeof(int32_t) * (size_t)ns);
        for (int i = 0; i < n - eos; i++)
            if (i < from || i >= to) rest[nr++] = tok[i];
        if (eos) sent[ns++] = rest[nr++] = tok[n - 1];
        pair p = {.id = id_of(r),
                  .anchor = take_row(sent, (size_t)ns, P->T),
                  .positive = take_row(rest, (size_t)nr, P->T)};
        p.key = fnv(p.anchor.tok, sizeof(int32_t) * (size_t)p.anchor.len);
        hold(P, &p);
        free(rest), free(sent);
    }
    free(tok);
}

static const char *const sides[] = {"anchor", "positive", NULL};

int main(int argc, char **argv) {
    kiln_cli cli;
    kiln_cli_init(&cli, argc, argv, HELP);
    pairer *P = xcalloc(1, sizeof *P); /* (the held pairs are too big for a stack) */
    P->T = 256, P->per_label = 1;
    bool columns = false, by_label = false, cloze = false;
    kopt rows[] = {
        KOPT_INT('B', "pairs", &P->B, "N", 2, 4096, "pairs per batch"),
        KOPT_INT('T', "len", &P->T, "N", 1, 65536, "tokens per row at most (default 256)"),
        KOPT_BOOL(0, "columns", &columns, "pairs from anchor/positive[/negative] token fields"),
        KOPT_BOOL(0, "by-label", &by_label, "pairs of records that share a label"),
        KOPT_BOOL(0, "cloze", &cloze, "a sentence and the rest of its text"),
        KOPT_INT(0, "per-label", &P->per_label, "N", 1, 4096,
                 "--by-label: up to N pairs of a label in a batch, kept out of each other's "
                 "negatives (default 1)"),
        KOPT_U64(0, "seed", &P->seed, "S", 0, UINT64_MAX, "which sentence --cloze takes"),
        KOPT_CHOICE(0, "side", &P->side, "SIDE", sides,
                    "instead of batches, one side of each pair as a tokens record with the "
                    "pair's id: queries (anchor) and corpus (positive) for kiln eval --queries "
                    "--corpus"),
        KOPT_STREAM(&cli),
        KOPT_END(),
    };
    kiln_cli_parse(&cli, rows, argc, argv);
    if (columns + by_label + cloze != 1)
        kiln_usage_error("choose one of --columns, --by-label, --cloze");
    if (!P->B == !P->side) kiln_usage_error("give -B PAIRS, or --side for tokens records");
    if (P->per_label > 1 && !by_label) kiln_usage_error("--per-label goes with --by-label");
    kreader *r = kiln_cli_reader(&cli);
    P->w = kiln_cli_writer(&cli);
    const krec *hdr = kreader_hdr(r);
    P->cursor = krec_u64_or(hdr, "skip", 0);
    kwriter_hdr_begin(P->w, hdr, P->side ? "tokens" : "pairs", krec_u64_or(hdr, "seed", 0));
    kwriter_end(P->w);
    krec rec;
    while (!kwriter_gone(P->w) && kreader_next(r, &rec)) {
        if (!krec_is(&rec, "tokens")) {
            kwriter_pass(P->w, &rec);
            continue;
        }
        P->cursor++;
        if (columns)
            from_columns(P, &rec);
        else if (by_label)
            from_label(P, &rec);
        else
            from_cloze(P, &rec);
        emit(P, false);
        if (kiln_stop_signal()) break;
    }
    if (!kwriter_gone(P->w)) emit(P, true);
    if (P->nheld || P->nwait)
        kiln_warn("%d pairs and %d records without a partner left over: too few for a batch "
                  "without a repeated anchor",
                  P->nheld, P->nwait);
    for (int i = 0; i < P->nheld; i++) free_pair(&P->held[i]);
    for (int i = 0; i < P->nwait; i++) kstored_free(P->by_label[i]);
    kwriter *w = P->w;
    free(P);
    kiln_finish(r, w);
}
