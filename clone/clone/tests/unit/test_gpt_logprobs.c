/* test_gpt_logprobs — the per-token API that DPO and PPO build on (lib/model/gpt.h):
 * log-probabilities and entropies agree with a float64 log-softmax of the forward's own
 * logits, sequence sums honour the mask, and gpt_backward_weighted with w = -s mask / count
 * gives exactly gpt_backward(s)'s gradients, on a plain model, one with frozen tensors and
 * one with LoRA adapters.  (Against PyTorch: tests/unit/test_gpt_parity.c; against finite
 * differences: tests/unit/test_gpt_grad.c.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model/gpt.h"
#include "model/lora.h"

enum { B = 3, T = 13 };
static int32_t xs[B * T], ys[B * T];
static uint8_t mask[B * T];

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f - 0.5f;
}

static gpt *make_model(kpool *pool) {
    gpt_config cfg = {.n_layer = 3, .n_embd = 16, .n_head = 2, .n_ctx = 16, .vocab = 29};
    gpt *m = gpt_create(&cfg, pool, 3);
    unsigned s = 11;
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += frand(&s) * 0.3f;
    return m;
}

/* logp and entropy against the logits in float64; sums against the mask */
static void check_values(gpt *m) {
    int V = m->cfg.vocab;
    gpt_forward(m, xs, ys, mask, B, T);
    float logp[B * T], ent[B * T], seq[B], again[B * T];
    gpt_token_logprobs(m, logp, ent);
    gpt_seq_logprobs(m, seq);
    const float *logits = gpt_logits(m);
    double worst = 0.0;
    for (int n = 0; n < B * T; n++) {
        const float *row = logits + (size_t)n * V;
        double mx = row[0], sum = 0.0, h = 0.0;
        for (int v = 1; v < V; v++) mx = fmax(mx, row[v]);
        for (int v = 0; v < V; v++) sum += exp(row[v] - mx);
        double lse = mx + log(sum);
        for (int v = 0; v < V; v++) h -= exp(row[v] - lse) * (row[v] - lse);
        worst = fmax(worst, fabs(logp[n] - (row[ys[n]] - lse)));
        worst = fmax(worst, fabs(ent[n] - h));
        CHECK(logp[n] <= 0.0f && ent[n] >= -1e-6f && ent[n] <= logf((float)V) + 1e-5f);
    }
    fprintf(stderr, "logp, entropy: worst absolute error %.3g against float64\n", worst);
    CHECK(worst < 2e-5);
    for (int b = 0; b < B; b++) {
        double sum = 0.0;
        for (int t = 0; t < T; t++) sum += mask[b * T + t] ? logp[b * T + t] : 0.0;
        CHECK_NEAR(seq[b], sum, 1e-6);
    }
    /* still there after a backward, which turns the logits into their gradient */
    gpt_backward(m, 1.0f);
    gpt_token_logprobs(m, again, NULL);
    CHECK(!memcmp(again, logp, sizeof logp));
    /* the same with no mask: every position counts */
    gpt_forward(m, xs, ys, NULL, B, T);
    gpt_seq_logprobs(m, seq);
    for (int b = 0; b < B; b++) {
        double sum = 0.0;
        for (int t = 0; t < T; t++) sum += logp[b * T + t];
        CHECK_NEAR(seq[b], sum, 1e-6);
    }
}

/* gradients (model and adapters) of gpt_backward(scale) and of the weighted backward with
 * w = -scale mask / count: equal bit for bit */
static void check_special_case(gpt *m, float scale) {
    size_t na = m->lora ? m->lora->n_params : 0;
    float *ref = malloc(sizeof(float) * (m->n_params + na));
    float w[B * T];
    gpt_zero_grad(m);
    gpt_forward(m, xs, ys, mask, B, T);
    gpt_backward(m, scale);
    memcpy(ref, m->grads, sizeof(float) * m->n_params);
    if (na) memcpy(ref + m->n_params, m->lora->grads, sizeof(float) * na);
    float count = m->mask_count;
    for (int n = 0; n < B * T; n++) w[n] = mask[n] ? -(scale * (1.0f / count)) : 0.0f;
    gpt_zero_grad(m);
    gpt_forward(m, xs, ys, mask, B, T);
    gpt_backward_weighted(m, w);
    CHECK(!memcmp(ref, m->grads, sizeof(float) * m->n_params));
    if (na) CHECK(!memcmp(ref + m->n_params, m->lora->grads, sizeof(float) * na));
    double norm = 0.0;
    for (size_t i = 0; i < m->n_params + na; i++) norm += fabs(ref[i]);
    CHECK(norm > 0.0);
    free(ref);
}

int main(void) {
    for (int i = 0; i < B * T; i++) {
        xs[i] = (int32_t)((i * 7 + 3) % 29);
        ys[i] = (int32_t)((i * 5 + 1) % 29);
        mask[i] = (i % T) >= 3 && i % 6 != 0;
    }
    kpool *pool = kpool_create(2);
    gpt *m = make_model(pool);
    check_values(m);
    check_special_case(m, 1.0f);
    check_special_case(m, 0.37f);

    /* frozen: the embeddings and block 0 (backward stops above it) */
    bool *frozen = calloc((size_t)m->n_tensors, sizeof(bool));
    for (int i = 0; i < m->n_tensors; i++) {
        const char *name = m->tensors[i].name;
        frozen[i] = strstr(name, ".wte.") || strstr(name, ".wpe.") || strstr(name, ".h.0.");
    }
    m->frozen = frozen;
    check_special_case(m, 0.5f);

    /* LoRA on every block linear over a wholly frozen base */
    for (int i = 0; i < m->n_tensors; i++) frozen[i] = true;
    lora_config lc = {.r = 2, .alpha = 4, .targets = 15};
    lora *a = lora_create(&lc, &m->cfg, 5);
    unsigned s = 21;
    for (size_t i = 0; i < a->n_params; i++) a->params[i] += frand(&s) * 0.2f; /* B off zero */
    m->lora = a;
    check_special_case(m, 1.0f);
    check_values(m);

    m->lora = NULL;
    m->frozen = NULL;
    lora_free(a);
    free(frozen);
    gpt_free(m);
    kpool_free(pool);
    return check_report("gpt_logprobs");
}
