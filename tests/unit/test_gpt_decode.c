/* test_gpt_decode — gpt_decode's logits equal gpt_forward's at every position of every
 * sequence: sequences of different lengths fed one token per call (each dropping out when it
 * ends), whole prompts in one call (spans of several attention groups, more rows than a
 * decoding chunk, so a sequence's run crosses chunks), sequences in any order, a sequence
 * rewound and continued differently, LoRA adapters (no dropout while decoding, the dropout
 * sequence untouched), and 1 against 3 threads. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/gpt.h"
#include "model/lora.h"

enum { R = 90, TMAX = 23, V = 37 };
static int32_t seq[R][TMAX];
static int len[R];
static float *ref; /* [R, TMAX, V] gpt_forward's logits of each sequence on its own */

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static gpt *make_model(kpool *pool) {
    gpt_config cfg = {.n_layer = 3, .n_embd = 32, .n_head = 4, .n_ctx = 24, .vocab = V};
    gpt *m = gpt_create(&cfg, pool, 5);
    unsigned s = 17;
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += frand(&s) * 0.2f;
    return m;
}

/* All sequences as one batch of TMAX: causal, so position t of a sequence does not see the
 * tokens past its length. */
static void reference(gpt *m) {
    gpt_forward(m, &seq[0][0], NULL, NULL, R, TMAX);
    memcpy(ref, gpt_logits(m), sizeof(float) * R * TMAX * V);
}

static double worst;

/* logits [n, V] of tokens (rows[i], pos[i]) against the reference */
static void compare(const float *logits, int n, const int *rows, const int *pos) {
    for (int i = 0; i < n; i++) {
        const float *want = ref + ((size_t)rows[i] * TMAX + pos[i]) * V;
        for (int v = 0; v < V; v++) worst = fmax(worst, fabs(logits[(size_t)i * V + v] - want[v]));
    }
}

/* One token a call per live sequence, in lockstep; a sequence stops costing work at its end. */
static void one_at_a_time(gpt *m) {
    gpt_kv *kv = gpt_kv_create(m, R, 0);
    int32_t tok[R];
    int rows[R], pos[R];
    float *logits = malloc(sizeof(float) * R * V);
    for (int t = 0; t < TMAX; t++) {
        int n = 0;
        for (int r = 0; r < R; r++)
            if (t < len[r]) tok[n] = seq[r][t], rows[n] = r, pos[n++] = t;
        gpt_decode(m, kv, n, tok, rows, NULL, logits);
        compare(logits, n, rows, pos);
    }
    for (int r = 0; r < R; r++) CHECK(gpt_kv_len(kv, r) == len[r]);
    free(logits);
    gpt_kv_free(kv);
}

/* Every sequence's first k tokens in one call (sequences in reverse order), then the rest in
 * one call per position, positions given. */
static void prompts_then_rest(gpt *m, int k) {
    gpt_kv *kv = gpt_kv_create(m, R, 0);
    int32_t *tok = malloc(sizeof(int32_t) * R * TMAX);
    int *rows = malloc(sizeof(int) * R * TMAX), *pos = malloc(sizeof(int) * R * TMAX);
    float *logits = malloc(sizeof(float) * R * TMAX * V);
    int n = 0;
    for (int r = R - 1; r >= 0; r--)
        for (int t = 0; t < k && t < len[r]; t++) tok[n] = seq[r][t], rows[n] = r, pos[n++] = t;
    gpt_decode(m, kv, n, tok, rows, NULL, logits);
    compare(logits, n, rows, pos);
    for (int t = k; t < TMAX; t++) {
        n = 0;
        for (int r = 0; r < R; r++)
            if (t < len[r]) tok[n] = seq[r][t], rows[n] = r, pos[n++] = t;
        gpt_decode(m, kv, n, tok, rows, pos, logits);
        compare(logits, n, rows, pos);
    }
    for (int r = 0; r < R; r++) CHECK(gpt_kv_len(kv, r) == len[r]);
    free(tok), free(rows), free(pos), free(logits);
    gpt_kv_free(kv);
}

/* Rewind sequence 0 to position 3 and go on with other tokens: the logits of the new sequence. */
static void rewound(gpt *m) {
    gpt_kv *kv = gpt_kv_create(m, 2, 16);
    CHECK(gpt_kv_positions(kv) == 16);
    float *logits = malloc(sizeof(float) * 16 * V), *want = malloc(sizeof(float) * 16 * V);
    int32_t a[16], b[16];
    for (int t = 0; t < 16; t++) a[t] = (int32_t)((t * 5 + 1) % V), b[t] = (int32_t)((t * 3) % V);
    memcpy(b, a, 3 * sizeof(int32_t));
    gpt_decode(m, kv, 12, a, (int[12]){0}, NULL, logits);
    CHECK(gpt_kv_len(kv, 0) == 12 && gpt_kv_len(kv, 1) == 0);
    gpt_decode(m, kv, 13, b + 3, (int[13]){0},
               (int[13]){3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, logits);
    CHECK(gpt_kv_len(kv, 0) == 16);
    gpt_forward(m, b, NULL, NULL, 1, 16);
    memcpy(want, gpt_logits(m), sizeof(float) * 16 * V);
    double w = 0;
    for (int i = 0; i < 13 * V; i++) w = fmax(w, fabs(logits[i] - want[3 * V + i]));
    worst = fmax(worst, w);
    free(logits), free(want);
    gpt_kv_free(kv);
}

static void run_all(gpt *m, const char *what) {
    worst = 0;
    reference(m);
    one_at_a_time(m);
    prompts_then_rest(m, 14);
    prompts_then_rest(m, TMAX);
    rewound(m);
    fprintf(stderr, "%s: worst |decode - forward| %.3g\n", what, worst);
    CHECK(worst <= 1e-5);
}

/* Lockstep decoding with the weights packed once (gpt_kv_pack_weights, what a generation run
 * does) gives the bits of decoding without. */
static void packed_weights(gpt *m) {
    gpt_kv *plain = gpt_kv_create(m, R, 0), *packed = gpt_kv_create(m, R, 0);
    gpt_kv_pack_weights(m, packed);
    int32_t tok[R];
    int rows[R];
    float *a = malloc(sizeof(float) * R * V), *b = malloc(sizeof(float) * R * V);
    bool same = true;
    for (int t = 0; t < TMAX; t++) {
        int n = 0;
        for (int r = 0; r < R; r++)
            if (t < len[r]) tok[n] = seq[r][t], rows[n++] = r;
        gpt_decode(m, plain, n, tok, rows, NULL, a);
        gpt_decode(m, packed, n, tok, rows, NULL, b);
        same = same && !memcmp(a, b, sizeof(float) * (size_t)n * V);
    }
    CHECK(same);
    gpt_kv_unpack_weights(packed);
    free(a), free(b);
    gpt_kv_free(plain), gpt_kv_free(packed);
}

/* The logits of every sequence, all of each fed in one call, on a pool of `threads`. */
static void logits_on(int threads, float *out) {
    kpool *pool = kpool_create(threads);
    gpt *m = make_model(pool);
    gpt_kv *kv = gpt_kv_create(m, R, 0);
    int *rows = malloc(sizeof(int) * R * TMAX);
    for (int i = 0; i < R * TMAX; i++) rows[i] = i / TMAX;
    gpt_decode(m, kv, R * TMAX, &seq[0][0], rows, NULL, out);
    free(rows);
    gpt_kv_free(kv);
    gpt_free(m);
    kpool_free(pool);
}

int main(void) {
    for (int r = 0; r < R; r++) {
        len[r] = 1 + (r * 7) % TMAX;
        for (int t = 0; t < TMAX; t++) seq[r][t] = (int32_t)((r * 11 + t * 13 + t * t) % V);
    }
    ref = malloc(sizeof(float) * R * TMAX * V);
    kpool *pool = kpool_create(2);
    gpt *m = make_model(pool);
    run_all(m, "plain");
    packed_weights(m);

    lora_config lc = {.r = 2, .alpha = 4, .dropout = 0.5f, .targets = 15};
    lora *a = lora_create(&lc, &m->cfg, 9);
    unsigned s = 3;
    for (size_t i = 0; i < a->n_params; i++) a->params[i] += frand(&s) * 0.3f;
    m->lora = a; /* reference forwards without dropout, decoding in training mode */
    reference(m);
    a->training = true;
    uint64_t pass = a->pass;
    worst = 0;
    one_at_a_time(m);
    prompts_then_rest(m, 9);
    fprintf(stderr, "LoRA: worst |decode - forward| %.3g\n", worst);
    CHECK(worst <= 1e-5);
    CHECK(a->training && a->pass == pass);
    packed_weights(m);
    m->lora = NULL;
    lora_free(a);
    gpt_free(m);
    kpool_free(pool);

    float *one = malloc(sizeof(float) * R * TMAX * V),
          *three = malloc(sizeof(float) * R * TMAX * V);
    memset(one, 0, sizeof(float) * R * TMAX * V);
    memset(three, 0, sizeof(float) * R * TMAX * V);
    logits_on(1, one);
    logits_on(3, three);
    CHECK(!memcmp(one, three, sizeof(float) * R * TMAX * V));
    free(one), free(three), free(ref);
    return check_report("gpt_decode");
}
