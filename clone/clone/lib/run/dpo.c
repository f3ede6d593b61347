/* dpo — the DPO and IPO losses on policy and reference completion log-probabilities. */
#include "run/dpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "data/prefpair.h"

enum { M_CHOSEN, M_REJECTED, M_ACCURACIES, M_MARGINS, M_LOGP_CHOSEN, M_LOGP_REJECTED };

kdpo_opts kdpo_defaults(void) {
    return (kdpo_opts){.beta = 0.1};
}

double kdpo_pair_loss(const double pi[2], const double ref[2], const kdpo_opts *o, double d[2]) {
    double z = (pi[0] - ref[0]) - (pi[1] - ref[1]), b = o->beta, loss, dz;
    if (o->ipo) {
        double e = z - 1 / (2 * b);
        loss = e * e;
        dz = 2 * e;
    } else {
        double eps = o->label_smoothing;
        loss = -(1 - eps) * kobj_log_sigmoid(b * z) - eps * kobj_log_sigmoid(-b * z);
        dz = -(1 - eps) * b * kobj_sigmoid(-b * z) + eps * b * kobj_sigmoid(b * z);
    }
    if (d) d[0] = dz, d[1] = -dz;
    return loss;
}

typedef struct dpo_state {
    kdpo_opts o;
    ktokenizer tok;
    bool has_tok;
    kprefpair pair;
    int32_t *x, *y;
    uint8_t *mask;
    float *w;
    size_t cap;
} dpo_state;

static void reserve(dpo_state *s, size_t n) {
    if (n <= s->cap) return;
    s->cap = n;
    s->x = xrealloc(s->x, xmul(n, sizeof(int32_t)));
    s->y = xrealloc(s->y, xmul(n, sizeof(int32_t)));
    s->mask = xrealloc(s->mask, n);
    s->w = xrealloc(s->w, xmul(n, sizeof(float)));
}

/* ref_chosen_logps and ref_rejected_logps; 0 or 65. */
static int read_ref(const krec *r, double ref[2], char *err, size_t errsz) {
    if (krec_f64(r, "ref_chosen_logps", &ref[0]) && krec_f64(r, "ref_rejected_logps", &ref[1]))
        return 0;
    return kiln_errf(err, errsz, EX_KILN_DATA,
                     "record %llu: DPO needs ref_chosen_logps and ref_rejected_logps (add them "
                     "with kiln logps --ckpt REFERENCE)",
                     (unsigned long long)r->seq);
}

int kdpo_logps(gpt *m, const kprefpair *p, int32_t *x, int32_t *y, uint8_t *mask, float out[2]) {
    int T = kprefpair_lm_rows(p, x, y, mask);
    gpt_forward(m, x, y, mask, 2, T);
    gpt_seq_logprobs(m, out);
    return T;
}

static int dpo_step(void *self, gpt *m, const krec *rec, float scale, kobj_out *out, char *err,
                    size_t errsz) {
    dpo_state *s = self;
    double ref[2], pi[2], d[2];
    int rc = kprefpair_read(&s->pair, rec, s->has_tok ? &s->tok : NULL, m->cfg.vocab,
                            m->cfg.n_ctx + 1, err, errsz);
    if (rc || (rc = read_ref(rec, ref, err, errsz))) return rc;
    reserve(s, 2 * (size_t)m->cfg.n_ctx);
    float seq[2];
    int T = kdpo_logps(m, &s->pair, s->x, s->y, s->mask, seq);
    double n[2] = {s->pair.len[0] - s->pair.prompt[0], s->pair.len[1] - s->pair.prompt[1]};
    for (int b = 0; b < 2; b++) { /* IPO: per-token averages, the reference's too */
        pi[b] = s->o.ipo ? seq[b] / n[b] : seq[b];
        ref[b] = s->o.ipo ? ref[b] / n[b] : ref[b];
    }
    out->loss = kdpo_pair_loss(pi, ref, &s->o, d);
    out->tokens = 2 * (uint64_t)T;
    double rw[2] = {s->o.beta * (pi[0] - ref[0]), s->o.beta * (pi[1] - ref[1])};
    out->metrics[M_CHOSEN] = rw[0];
    out->metrics[M_REJECTED] = rw[1];
    out->metrics[M_ACCURACIES] = rw[0] > rw[1];
    out->metrics[M_MARGINS] = rw[0] - rw[1];
    out->metrics[M_LOGP_CHOSEN] = pi[0];
    out->metrics[M_LOGP_REJECTED] = pi[1];
    if (!isfinite(out->loss)) return 0; /* the engine stops the run */
    for (int b = 0; b < 2; b++) {
        double g = scale * d[b] / (s->o.ipo ? n[b] : 1); /* dloss / dlogp of each token */
        for (int t = 0; t < T; t++) s->w[b * T + t] = s->mask[b * T + t] ? (float)g : 0.0f;
    }
    gpt_backward_weighted(m, s->w);
    return 0;
}

static int dpo_setup(void *self, const gpt *m, const msgpack_object *tokenizer, char *err,
                     size_t errsz) {
    dpo_state *s = self;
    if (!tokenizer || !ktok_from_obj(tokenizer, &s->tok, err, errsz)) return EX_KILN_DATA;
    s->has_tok = true;
    return 0;
}

static void dpo_free(void *self) {
    dpo_state *s = self;
    kprefpair_free(&s->pair);
    if (s->has_tok) ktok_free(&s->tok);
    free(s->x), free(s->y), free(s->mask), free(s->w);
    free(s);
}

kobjective kdpo_objective(const kdpo_opts *o) {
    static const char *const names[] = {"rewards/chosen",
                                        "rewards/rejected",
                                        "rewards/accuracies",
                                        "rewards/margins",
                                        "logps/chosen",
                                        "logps/rejected",
                                        NULL};
    dpo_state *s = xcalloc(1, sizeof *s);
    s->o = *o;
    return (kobjective){.name = "dpo",
                        .record = "pref",
                        .accepts = kpref_like,
                        .metric_names = names,
                        .head = GPT_HEAD_LM,
                        .step = dpo_step,
                        .setup = dpo_setup,
                        .free = dpo_free,
                        .self = s};
}
