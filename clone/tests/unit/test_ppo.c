/* test_ppo — lib/run/ppo.h against TRL's formulas in PyTorch float64 (tests/torch_ppo.py wrote
 * tests/fixtures/ppo.bin): scores, the k1 KL, rewards, GAE, whitening, the clipped policy and
 * value losses with their gradients; the adaptive KL controller by hand; and the value head's
 * gradient through the trunk (gpt_backward_weighted_hidden) against finite differences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "model/gpt.h"
#include "run/ppo.h"

enum { R = 4, N = 6 };

static void check_fixture(void) {
    if (!fixture_load("ppo.bin")) {
        fprintf(stderr, "tests/fixtures/ppo.bin missing (run tests/torch_ppo.py)\n");
        CHECK(0);
        return;
    }
    ppo_config c;
    ppo_config_default(&c);
    int len[R];
    const fixture_entry *fl = fixture_get("", "len"), *raw = fixture_get("", "raw"),
                        *ended = fixture_get("", "ended");
    for (int r = 0; r < R; r++) len[r] = (int)fl->v[r];
    double scores[R];
    float sc[R];
    for (int r = 0; r < R; r++) sc[r] = (float)(scores[r] = ppo_score(&c, raw->v[r], ended->v[r]));
    fixture_compare("scores", sc, fixture_get("", "scores"), R, 1e-6);

    const float *logp = fixture_get("", "logp")->v, *ref = fixture_get("", "ref_logp")->v,
                *values = fixture_get("", "values")->v;
    float kl[R * N], rewards[R * N], adv[R * N], ret[R * N];
    ppo_rewards(&c, R, N, len, logp, ref, scores, kl, rewards);
    fixture_compare("kl", kl, fixture_get("", "kl"), R * N, 1e-5);
    fixture_compare("rewards", rewards, fixture_get("", "rewards"), R * N, 1e-5);
    ppo_gae(&c, R, N, len, rewards, values, adv, ret);
    fixture_compare("advantages", adv, fixture_get("", "adv"), R * N, 1e-5);
    fixture_compare("returns", ret, fixture_get("", "returns"), R * N, 1e-5);
    ppo_whiten(R, N, len, adv);
    fixture_compare("whitened", adv, fixture_get("", "white"), R * N, 1e-5);

    /* the losses from the fixture's own whitened advantages and returns */
    const float *white = fixture_get("", "white")->v, *rets = fixture_get("", "returns")->v;
    float dlogp[R * N], dvalue[R * N];
    ppo_stats s;
    ppo_losses(&c, R, N, len, fixture_get("", "new_logp")->v, logp, white,
               fixture_get("", "vpred")->v, values, rets, &s, dlogp, dvalue);
    struct {
        const char *name;
        double v;
    } sc_[] = {{"pg_loss", s.pg_loss},
               {"vf_loss", s.vf_loss},
               {"loss", s.loss},
               {"pg_clipfrac", s.pg_clipfrac},
               {"vf_clipfrac", s.vf_clipfrac},
               {"approxkl", s.approxkl},
               {"ratio", s.ratio}};
    for (size_t i = 0; i < sizeof sc_ / sizeof sc_[0]; i++) {
        float v = (float)sc_[i].v;
        fixture_compare(sc_[i].name, &v, fixture_get("", sc_[i].name), 1, 1e-5);
    }
    CHECK(s.pg_clipfrac > 0 && s.vf_clipfrac > 0); /* both clipped branches were exercised */
    fixture_compare("d loss / d logp", dlogp, fixture_get("", "dlogp"), R * N, 1e-5);
    fixture_compare("d loss / d value", dvalue, fixture_get("", "dvalue"), R * N, 1e-5);
    fprintf(stderr, "ppo: worst relative error against PyTorch %.3g\n", fixture_worst);
    fixture_free();
}

static void check_kl_controller(void) {
    /* KL twice the target: the error clips at +0.2; half: -0.2 scaled by n / horizon */
    CHECK_NEAR(ppo_kl_adapt(0.1, 12.0, 6.0, 10000, 256), 0.1 * (1 + 0.2 * 256 / 10000.0), 1e-12);
    CHECK_NEAR(ppo_kl_adapt(0.1, 3.0, 6.0, 10000, 256), 0.1 * (1 - 0.2 * 256 / 10000.0), 1e-12);
    CHECK_NEAR(ppo_kl_adapt(0.1, 6.6, 6.0, 100, 10), 0.1 * (1 + 0.1 * 10 / 100.0), 1e-12);
}

/* ---- the value head through the trunk, against finite differences ------------------------ */

enum { B = 2, T = 7 };
static int32_t xs[B * T], ys[B * T];
static float w[B * T], u[B * T];

/* L = sum w logp + sum u V in float64 */
static double objective(gpt *m) {
    float logp[B * T], v[B * T];
    gpt_forward(m, xs, ys, NULL, B, T);
    gpt_token_logprobs(m, logp, NULL);
    ppo_values(m, v);
    double L = 0.0;
    for (int i = 0; i < B * T; i++) L += (double)w[i] * logp[i] + (double)u[i] * v[i];
    return L;
}

static void check_value_gradient(void) {
    kpool *pool = kpool_create(2);
    gpt_config cfg = {
        .n_layer = 2, .n_embd = 16, .n_head = 2, .n_ctx = 8, .vocab = 23, .head = GPT_HEAD_SCALAR};
    gpt *m = gpt_create(&cfg, pool, 7);
    for (int i = 0; i < B * T; i++) {
        xs[i] = (i * 5 + 2) % 23;
        ys[i] = (i * 3 + 1) % 23;
        w[i] = (float)((i % 5) - 2) * 0.3f;
        u[i] = (float)((i % 3) - 1) * 0.7f;
    }
    for (int c = 0; c < 16; c++) m->p.scorew[c] = 0.2f * (float)((c % 7) - 3);
    gpt_zero_grad(m);
    objective(m);
    float *dh = malloc(sizeof(float) * B * T * 16);
    ppo_values_backward(m, u, dh);
    gpt_backward_weighted_hidden(m, w, dh);
    free(dh);
    /* a few parameters of each kind: score.weight, wte, a block's c_fc, ln_f */
    const char *names[] = {"score.weight", "transformer.wte.weight",
                           "transformer.h.0.mlp.c_fc.weight", "transformer.ln_f.bias"};
    double worst = 0.0;
    for (int k = 0; k < 4; k++) {
        const gpt_tensor *t = &m->tensors[gpt_find_tensor(m, names[k])];
        for (size_t j = 0; j < 3; j++) {
            size_t i = t->offset + (j * 7919) % t->numel;
            float keep = m->params[i], h = 1e-2f;
            m->params[i] = keep + h;
            double up = objective(m);
            m->params[i] = keep - h;
            double down = objective(m);
            m->params[i] = keep;
            double fd = (up - down) / (2.0 * h), an = m->grads[i];
            double err = fabs(fd - an) / fmax(1e-2, fabs(fd));
            worst = fmax(worst, err);
            if (err > 2e-2)
                fprintf(stderr, "%s[%zu]: fd %.6g analytic %.6g\n", names[k], i, fd, an);
        }
    }
    fprintf(stderr,
            "value head through the trunk: worst relative error %.3g against finite "
            "differences\n",
            worst);
    CHECK(worst < 2e-2);
    gpt_free(m);
    kpool_free(pool);
}

int main(void) {
    check_fixture();
    check_kl_controller();
    check_value_gradient();
    return check_report("ppo");
}
