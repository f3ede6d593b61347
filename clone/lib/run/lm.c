/* lm — next-token cross-entropy on batch records. */
#include "run/lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

typedef struct lm_state {
    int32_t *x, *y;
    uint8_t *mask;
    size_t cap;
} lm_state;

static bool same_2d(const ktensor *a, const ktensor *b) {
    return a->ndim == 2 && b->ndim == 2 && a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1];
}

static void reserve(lm_state *s, size_t n) {
    if (n <= s->cap) return;
    s->cap = n;
    s->x = xrealloc(s->x, xmul(n, sizeof(int32_t)));
    s->y = xrealloc(s->y, xmul(n, sizeof(int32_t)));
    s->mask = xrealloc(s->mask, n);
}

/* The batch's x, y and mask into s, checked against the model; 0 or 65. */
static int read_batch(lm_state *s, const gpt *m, const krec *r, int *B, int *T, char *err,
                      size_t errsz) {
    ktensor x, y, mask;
    unsigned long long seq = (unsigned long long)r->seq;
    if (!krec_tensor(r, "x", &x) || !krec_tensor(r, "y", &y) || x.dtype != KT_I32 ||
        y.dtype != KT_I32 || !same_2d(&x, &y))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu: batch needs x and y, I32 [B,T] of one shape", seq);
    if (x.shape[1] > (uint64_t)m->cfg.n_ctx)
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu: batch T %llu exceeds the model context %d", seq,
                         (unsigned long long)x.shape[1], m->cfg.n_ctx);
    if (x.shape[0] * x.shape[1] > (1u << 26))
        return kiln_errf(err, errsz, EX_KILN_DATA,
                         "record %llu: batch of %llu x %llu tokens is too large", seq,
                         (unsigned long long)x.shape[0], (unsigned long long)x.shape[1]);
    size_t n = (size_t)(x.shape[0] * x.shape[1]);
    reserve(s, n);
    ktensor_copy(&x, s->x);
    ktensor_copy(&y, s->y);
    if (krec_get(r, "mask")) {
        if (!krec_tensor(r, "mask", &mask) || mask.dtype != KT_U8 || !same_2d(&mask, &x))
            return kiln_errf(err, errsz, EX_KILN_DATA, "record %llu: mask is not U8 [B,T] like x",
                             seq);
        ktensor_copy(&mask, s->mask);
    } else {
        memset(s->mask, 1, n);
    }
    int V = m->cfg.vocab;
    for (size_t i = 0; i < n; i++)
        if (s->x[i] < 0 || s->x[i] >= V || s->y[i] < 0 || s->y[i] >= V)
            return kiln_errf(err, errsz, EX_KILN_DATA,
                             "record %llu: token %d is outside the vocabulary (%d)", seq,
                             s->x[i] < 0 || s->x[i] >= V ? s->x[i] : s->y[i], V);
    *B = (int)x.shape[0];
    *T = (int)x.shape[1];
    return 0;
}

static int lm_step(void *self, gpt *m, const krec *r, float scale, kobj_out *out, char *err,
                   size_t errsz) {
    lm_state *s = self;
    int B, T, rc = read_batch(s, m, r, &B, &T, err, errsz);
    if (rc) return rc;
    out->loss = gpt_forward(m, s->x, s->y, s->mask, B, T);
    out->tokens = (uint64_t)B * (uint64_t)T;
    if (isfinite(out->loss)) gpt_backward(m, scale); /* (a NaN stops the run: no backward) */
    return 0;
}

static void lm_free(void *self) {
    lm_state *s = self;
    free(s->x), free(s->y), free(s->mask);
    free(s);
}

kobjective klm_objective(void) {
    static const char *const none[] = {NULL};
    return (kobjective){.name = "lm",
                        .record = "batch",
                        .metric_names = none,
                        .head = GPT_HEAD_LM,
                        .step = lm_step,
                        .free = lm_free,
                        .self = xcalloc(1, sizeof(lm_state))};
}
