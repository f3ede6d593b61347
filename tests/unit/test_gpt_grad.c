/* test_gpt_grad — every layer's backward against central finite differences.
 *
 * For each named tensor (so every layer's weights, biases, LayerNorm gains, the embeddings
 * and the heads) the analytic gradient is compared with a central difference of the loss
 * (the LM's mean cross-entropy, the scalar head, pooling, a weighted sum of log-probabilities),
 * along a random direction over the whole tensor and on a few single elements.  The model
 * is tiny and T spans two of attention's 6-row groups (the second one short), with a loss mask. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/gpt.h"

enum { B = 2, T = 11 };
static int32_t xs[B * T], ys[B * T];
static uint8_t mask[B * T];

typedef enum {
    LOSS_LM,
    LOSS_SCALAR_LAST,
    LOSS_SCALAR_MEAN,
    LOSS_POOL_MEAN,
    LOSS_POOL_WEIGHTED, /* SGPT's position-weighted mean */
    LOSS_WEIGHTED       /* sum of w[b, t] log p(y[b, t]): gpt_backward_weighted */
} loss_kind;

static const float value_weights[B] = {0.7f, -1.3f};
static float pool_weights[B * 64];
static float logp_weights[B * T];

/* The loss for a kind, computed in float by the model, accumulated in double here. */
static double loss_of(gpt *m, loss_kind kind) {
    if (kind == LOSS_LM) return gpt_forward(m, xs, ys, mask, B, T);
    if (kind == LOSS_WEIGHTED) {
        float logp[B * T];
        gpt_forward(m, xs, ys, mask, B, T);
        gpt_token_logprobs(m, logp, NULL);
        double loss = 0.0;
        for (int i = 0; i < B * T; i++) loss += (double)logp_weights[i] * logp[i];
        return loss;
    }
    gpt_forward_hidden(m, xs, B, T);
    double loss = 0.0;
    if (kind == LOSS_POOL_MEAN || kind == LOSS_POOL_WEIGHTED) {
        float pooled[B * 64];
        gpt_pool(m, mask, kind == LOSS_POOL_MEAN ? GPT_POOL_MEAN : GPT_POOL_WEIGHTED, pooled);
        for (int i = 0; i < B * m->cfg.n_embd; i++) loss += pool_weights[i] * pooled[i];
        return loss;
    }
    float v[B];
    gpt_scalar(m, mask, kind == LOSS_SCALAR_LAST ? GPT_POOL_LAST : GPT_POOL_MEAN, v);
    for (int b = 0; b < B; b++) loss += value_weights[b] * v[b];
    return loss;
}

static void backward_of(gpt *m, loss_kind kind) {
    gpt_zero_grad(m);
    loss_of(m, kind);
    if (kind == LOSS_LM)
        gpt_backward(m, 1.0f);
    else if (kind == LOSS_WEIGHTED)
        gpt_backward_weighted(m, logp_weights);
    else if (kind == LOSS_POOL_MEAN || kind == LOSS_POOL_WEIGHTED)
        gpt_pool_backward(m, pool_weights);
    else
        gpt_scalar_backward(m, value_weights);
}

static double frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return ((*s >> 8) & 0xffff) / 65536.0 - 0.5;
}

/* Directional derivative of the loss along dir (over tensor t) by central differences. */
static double numeric(gpt *m, loss_kind kind, const gpt_tensor *t, const float *dir, float eps) {
    float *p = m->params + t->offset;
    float *saved = malloc(t->numel * sizeof(float));
    memcpy(saved, p, t->numel * sizeof(float));
    for (size_t i = 0; i < t->numel; i++) p[i] = saved[i] + eps * dir[i];
    double up = loss_of(m, kind);
    for (size_t i = 0; i < t->numel; i++) p[i] = saved[i] - eps * dir[i];
    double down = loss_of(m, kind);
    memcpy(p, saved, t->numel * sizeof(float));
    free(saved);
    return (up - down) / (2.0 * eps);
}

static double worst;

static void check_tensor(gpt *m, loss_kind kind, const gpt_tensor *t, const float *grad,
                         unsigned *seed) {
    float *dir = calloc(t->numel, sizeof(float));
    double analytic = 0.0, norm = 0.0;
    for (size_t i = 0; i < t->numel; i++) {
        dir[i] = (float)frand(seed) * 2.0f;
        analytic += (double)dir[i] * grad[t->offset + i];
        norm += fabs(dir[i] * grad[t->offset + i]);
    }
    double num = numeric(m, kind, t, dir, 1e-2f);
    double err = fabs(num - analytic) / fmax(fmax(fabs(num), norm), 1e-3);
    if (err > worst) worst = err;
    if (err > 2e-3)
        fprintf(stderr, "kind %d %s: analytic %.7g numeric %.7g (rel %.2g)\n", kind, t->name,
                analytic, num, err);
    CHECK(err <= 2e-3);
    /* and the largest single element */
    size_t big = 0;
    for (size_t i = 0; i < t->numel; i++)
        if (fabsf(grad[t->offset + i]) > fabsf(grad[t->offset + big])) big = i;
    memset(dir, 0, t->numel * sizeof(float));
    dir[big] = 1.0f;
    num = numeric(m, kind, t, dir, 1e-2f);
    double g = grad[t->offset + big];
    err = fabs(num - g) / fmax(fabs(g), 1e-3);
    if (err > 5e-3)
        fprintf(stderr, "kind %d %s[%zu]: analytic %.7g numeric %.7g\n", kind, t->name, big, g,
                num);
    CHECK(err <= 5e-3);
    free(dir);
}

static void check_model(gpt *m, loss_kind kind) {
    float *grad = malloc(m->n_params * sizeof(float));
    backward_of(m, kind);
    memcpy(grad, m->grads, m->n_params * sizeof(float));
    unsigned seed = 99;
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        if ((kind == LOSS_LM || kind == LOSS_WEIGHTED) && !strcmp(t->name, "score.weight")) {
            for (size_t k = 0; k < t->numel; k++) CHECK(grad[t->offset + k] == 0.0f);
            continue;
        }
        check_tensor(m, kind, t, grad, &seed);
    }
    free(grad);
}

int main(void) {
    kpool *pool = kpool_create(2);
    gpt_config cfg = {
        .n_layer = 2, .n_embd = 16, .n_head = 2, .n_ctx = 12, .vocab = 13, .head = GPT_HEAD_SCALAR};
    gpt *m = gpt_create(&cfg, pool, 7);
    unsigned seed = 5;
    /* Larger random weights than GPT-2's init, so every path carries gradient. */
    for (int i = 0; i < m->n_tensors; i++) {
        const gpt_tensor *t = &m->tensors[i];
        for (size_t k = 0; k < t->numel; k++)
            m->params[t->offset + k] += (float)frand(&seed) * (t->ndim == 2 ? 0.6f : 0.4f);
    }
    for (int i = 0; i < B * T; i++) {
        xs[i] = (int32_t)((i * 7 + 3) % cfg.vocab);
        ys[i] = (int32_t)((i * 5 + 1) % cfg.vocab);
        mask[i] = (i % T) >= 2 && (i % 5) != 0; /* a "prompt" and some holes */
    }
    mask[B * T - 1] = 0; /* the last row's last position is masked out: pooling must skip it */
    for (int i = 0; i < B * cfg.n_embd; i++) pool_weights[i] = (float)frand(&seed);
    for (int i = 0; i < B * T; i++) /* both signs, some positions left out */
        logp_weights[i] = i % 4 == 1 ? 0.0f : (float)frand(&seed) * 2.0f;

    /* The loss mask is honoured: changing a masked-out target changes nothing. */
    float l0 = gpt_forward(m, xs, ys, mask, B, T);
    ys[T] = (ys[T] + 1) % cfg.vocab; /* position T = row 1, t 0: masked out */
    CHECK(gpt_forward(m, xs, ys, mask, B, T) == l0);
    CHECK(l0 > 0.0f && isfinite(l0));

    for (loss_kind k = LOSS_LM; k <= LOSS_WEIGHTED; k++) check_model(m, k);
    fprintf(stderr, "worst relative error %.3g over %d tensors x 5 losses\n", worst, m->n_tensors);
    gpt_free(m);
    kpool_free(pool);
    return check_report("gpt_grad");
}
