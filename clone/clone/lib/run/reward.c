/* reward — Bradley–Terry on the scalar head at the last token. */
#include "run/reward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "data/prefpair.h"

enum { M_ACCURACY, M_MARGIN, M_MIN, M_MEAN, M_MAX };

double kreward_pair_loss(const float r[2], double center, float d[2]) {
    double diff = (double)r[0] - r[1], sum = (double)r[0] + r[1];
    double loss = -kobj_log_sigmoid(diff) + center * sum * sum;
    if (d) {
        double g = -kobj_sigmoid(-diff); /* d(-log sigmoid(diff)) / d diff */
        d[0] = (float)(g + 2 * center * sum);
        d[1] = (float)(-g + 2 * center * sum);
    }
    return loss;
}

typedef struct reward_state {
    kreward_opts o;
    ktokenizer tok;
    bool has_tok;
    kprefpair pair;
    int32_t *x;
    uint8_t *mask;
    size_t cap;
} reward_state;

static void reserve(reward_state *s, size_t n) {
    if (n <= s->cap) return;
    s->cap = n;
    s->x = xrealloc(s->x, xmul(n, sizeof(int32_t)));
    s->mask = xrealloc(s->mask, n);
}

void kreward_score_pair(gpt *m, const kprefpair *p, int32_t *x, uint8_t *mask, float r[2]) {
    int T = kprefpair_rows(p, x, mask);
    gpt_forward_hidden(m, x, 2, T);
    gpt_scalar(m, mask, GPT_POOL_LAST, r);
}

static int reward_step(void *self, gpt *m, const krec *rec, float scale, kobj_out *out, char *err,
                       size_t errsz) {
    reward_state *s = self;
    int rc = kprefpair_read(&s->pair, rec, s->has_tok ? &s->tok : NULL, m->cfg.vocab, m->cfg.n_ctx,
                            err, errsz);
    if (rc) return rc;
    reserve(s, 2 * (size_t)m->cfg.n_ctx);
    float r[2], d[2];
    kreward_score_pair(m, &s->pair, s->x, s->mask, r);
    out->loss = kreward_pair_loss(r, s->o.center, d);
    out->tokens = (uint64_t)s->pair.len[0] + (uint64_t)s->pair.len[1];
    out->metrics[M_ACCURACY] = r[0] > r[1];
    out->metrics[M_MARGIN] = (double)r[0] - r[1];
    out->metrics[M_MIN] = r[0] < r[1] ? r[0] : r[1];
    out->metrics[M_MEAN] = ((double)r[0] + r[1]) / 2;
    out->metrics[M_MAX] = r[0] > r[1] ? r[0] : r[1];
    if (!isfinite(out->loss)) return 0; /* the engine stops the run */
    d[0] *= scale, d[1] *= scale;
    gpt_scalar_backward(m, d);
    return 0;
}

static int reward_setup(void *self, const gpt *m, const msgpack_object *tokenizer, char *err,
                        size_t errsz) {
    reward_state *s = self;
    if (m->cfg.head != GPT_HEAD_SCALAR)
        return kiln_errf(err, errsz, EX_KILN_SOFTWARE, "the reward objective needs a scalar head");
    if (!tokenizer || !ktok_from_obj(tokenizer, &s->tok, err, errsz)) return EX_KILN_DATA;
    s->has_tok = true;
    return 0;
}

static void reward_free(void *self) {
    reward_state *s = self;
    kprefpair_free(&s->pair);
    if (s->has_tok) ktok_free(&s->tok);
    free(s->x), free(s->mask);
    free(s);
}

kobjective kreward_objective(const kreward_opts *o) {
    static const char *const names[] = {"accuracy",    "margin",     "min_reward",
                                        "mean_reward", "max_reward", NULL};
    reward_state *s = xcalloc(1, sizeof *s);
    s->o = *o;
    return (kobjective){.name = "reward",
                        .record = "pref",
                        .accepts = kpref_like,
                        .metric_names = names,
                        .head = GPT_HEAD_SCALAR,
                        .step = reward_step,
                        .setup = reward_setup,
                        .free = reward_free,
                        .self = s};
}
