/* prefpair — preference pairs as token rows. */
#include "data/prefpair.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const char *const side_name[2] = {"chosen", "rejected"};

bool kpref_like(const krec *r) {
    return krec_is(r, "pref") || (krec_get(r, "chosen") && krec_get(r, "rejected"));
}

static void reserve(kprefpair *p, int side, size_t n) {
    if (n <= p->cap[side]) return;
    p->cap[side] = n;
    p->row[side] = xrealloc(p->row[side], xmul(n, sizeof(int32_t)));
}

/* A token field as a vector; -1 when it is absent, -2 when it is not an I32 [n]. */
static int64_t token_field(const krec *r, const char *key, ktensor *t) {
    if (!krec_get(r, key)) return -1;
    if (!krec_tensor(r, key, t) || t->dtype != KT_I32 || t->ndim != 1) return -2;
    return (int64_t)t->shape[0];
}

/* Both rows from the record's token fields; 0, 1 when it has none, or 65. */
static int from_tokens(kprefpair *p, const krec *r, char *err, size_t errsz) {
    unsigned long long seq = (unsigned long long)r->seq;
    ktensor pt, ct[2];
    int64_t np = token_field(r, "prompt_tokens", &pt);
    int64_t nc[2] = {token_field(r, "chosen_tokens", &ct[0]),
                     token_field(r, "rejected_tokens", &ct[1])};
    if (nc[0] == -1 && nc[1] == -1) return 1;
    if (np == -2 || nc[0] < 0 || nc[1] < 0)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu: chosen_tokens and rejected_tokens (and prompt_tokens) "
                         "must all be I32 [n]",
                         seq);
    for (int s = 0; s < 2; s++) {
        size_t P = np > 0 ? (size_t)np : 0;
        reserve(p, s, P + (size_t)nc[s] + 1);
        if (P) ktensor_copy(&pt, p->row[s]);
        ktensor_copy(&ct[s], p->row[s] + P);
        p->prompt[s] = (int)P;
        p->len[s] = (int)(P + (size_t)nc[s]);
    }
    return 0;
}

/* Text of a field ("" when absent); false when present but not a string. */
static bool text_field(const krec *r, const char *key, const char **s, size_t *n) {
    *s = "", *n = 0;
    return !krec_get(r, key) || krec_str(r, key, s, n);
}

static int from_text(kprefpair *p, const krec *r, const ktokenizer *tok, char *err, size_t errsz) {
    unsigned long long seq = (unsigned long long)r->seq;
    const char *ps, *cs[2];
    size_t pn, cn[2];
    if (!krec_get(r, "chosen") || !krec_get(r, "rejected"))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu (%s): a preference pair needs chosen and rejected", seq,
                         r->t);
    if (!text_field(r, "prompt", &ps, &pn) || !text_field(r, "chosen", &cs[0], &cn[0]) ||
        !text_field(r, "rejected", &cs[1], &cn[1]))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu: prompt, chosen and rejected must be text (or give "
                         "prompt_tokens, chosen_tokens, rejected_tokens)",
                         seq);
    if (!tok)
        return kiln_errf(err, errsz, EX_KILN_DATA, "record %llu: text, but no tokenizer", seq);
    for (int s = 0; s < 2; s++) {
        reserve(p, s, pn + cn[s] + 8); /* a token per byte at most, plus EOS twice */
        size_t P = ktok_encode_text(tok, (const uint8_t *)ps, pn, -1, false, p->row[s]) - 1;
        size_t N = ktok_encode_text(tok, (const uint8_t *)cs[s], cn[s], -1, false, p->row[s] + P);
        p->prompt[s] = (int)P;
        p->len[s] = (int)(P + N);
    }
    return 0;
}

/* An empty prompt becomes EOS; then the row is cut to max_len. */
static void fit(kprefpair *p, int s, int32_t eos, int max_len) {
    if (p->prompt[s] == 0) {
        memmove(p->row[s] + 1, p->row[s], (size_t)p->len[s] * sizeof(int32_t));
        p->row[s][0] = eos;
        p->prompt[s] = 1, p->len[s]++;
    }
    int P = p->prompt[s], N = p->len[s] - P;
    if (P + N <= max_len) return;
    int keep = max_len - N < 1 ? 1 : max_len - N; /* the end of the prompt */
    memmove(p->row[s], p->row[s] + (P - keep), (size_t)(keep + N) * sizeof(int32_t));
    if (keep + N > max_len) N = max_len - keep; /* and the start of the completion */
    p->prompt[s] = keep, p->len[s] = keep + N;
}

int kprefpair_read(kprefpair *p, const krec *r, const ktokenizer *tok, int vocab, int max_len,
                   char *err, size_t errsz) {
    int rc = from_tokens(p, r, err, errsz);
    if (rc == 1) rc = from_text(p, r, tok, err, errsz);
    if (rc) return rc;
    unsigned long long seq = (unsigned long long)r->seq;
    for (int s = 0; s < 2; s++) {
        if (p->len[s] == p->prompt[s])
            return kiln_errf(err, errsz, EX_KILN_DATA, "record %llu: %s is empty", seq,
                             side_name[s]);
        fit(p, s, tok ? (int32_t)tok->eos : p->row[s][p->len[s] - 1], max_len);
        for (int i = 0; i < p->len[s]; i++)
            if (p->row[s][i] < 0 || p->row[s][i] >= vocab)
                return kiln_errf(err, errsz, EX_KILN_DATA,
                                 "record %llu: %s token %d is outside the vocabulary (%d)", seq,
                                 side_name[s], p->row[s][i], vocab);
    }
    return 0;
}

void kprefpair_free(kprefpair *p) {
    free(p->row[0]), free(p->row[1]);
    memset(p, 0, sizeof *p);
}

int kprefpair_rows(const kprefpair *p, int32_t *x, uint8_t *mask) {
    int T = p->len[0] > p->len[1] ? p->len[0] : p->len[1];
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < T; t++) {
            bool in = t < p->len[s];
            x[s * T + t] = in ? p->row[s][t] : 0;
            mask[s * T + t] = in;
        }
    return T;
}

int kprefpair_lm_rows(const kprefpair *p, int32_t *x, int32_t *y, uint8_t *mask) {
    int T = (p->len[0] > p->len[1] ? p->len[0] : p->len[1]) - 1;
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < T; t++) {
            bool in = t + 1 < p->len[s];
            x[s * T + t] = in ? p->row[s][t] : 0;
            y[s * T + t] = in ? p->row[s][t + 1] : 0;
            mask[s * T + t] = in && t + 1 >= p->prompt[s];
        }
    return T;
}
