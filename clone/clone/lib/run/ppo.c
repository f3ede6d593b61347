/* ppo — PPO's rewards, advantages and clipped losses; the value head. */
#include "run/ppo.h"

#include <math.h>
#include <string.h>

void ppo_config_default(ppo_config *c) {
    *c = (ppo_config){.kl_coef = 0.05,
                      .gamma = 1.0,
                      .lam = 0.95,
                      .cliprange = 0.2,
                      .cliprange_value = 0.2,
                      .vf_coef = 0.1,
                      .score_clip = 5.0,
                      .missing_eos_penalty = 1.0};
}

static double clampd(double x, double lo, double hi) {
    return x < lo ? lo : x > hi ? hi : x;
}

double ppo_score(const ppo_config *c, double raw, bool ended) {
    double s = ended ? raw : raw - c->missing_eos_penalty;
    return clampd(s, -c->score_clip, c->score_clip);
}

void ppo_rewards(const ppo_config *c, int R, int N, const int *len, const float *logp,
                 const float *ref_logp, const double *scores, float *kl, float *rewards) {
    for (int r = 0; r < R; r++)
        for (int t = 0; t < N; t++) {
            size_t i = (size_t)r * N + t;
            kl[i] = t < len[r] ? logp[i] - ref_logp[i] : 0.0f;
            rewards[i] = (float)(-c->kl_coef * kl[i]);
            if (t == len[r] - 1) rewards[i] += (float)scores[r];
        }
}

void ppo_gae(const ppo_config *c, int R, int N, const int *len, const float *rewards,
             const float *values, float *adv, float *returns) {
    for (int r = 0; r < R; r++) {
        size_t row = (size_t)r * N;
        double last = 0.0, next_value = 0.0; /* nothing follows the last token */
        for (int t = N - 1; t >= 0; t--) {
            if (t >= len[r]) {
                adv[row + t] = returns[row + t] = 0.0f;
                continue;
            }
            double delta = rewards[row + t] + c->gamma * next_value - values[row + t];
            last = delta + c->gamma * c->lam * last;
            adv[row + t] = (float)last;
            returns[row + t] = (float)(last + values[row + t]);
            next_value = values[row + t];
        }
    }
}

void ppo_whiten(int R, int N, const int *len, float *x) {
    double sum = 0.0, n = 0.0;
    for (int r = 0; r < R; r++)
        for (int t = 0; t < len[r]; t++) sum += x[(size_t)r * N + t], n += 1.0;
    if (n == 0.0) return;
    double mean = sum / n, sq = 0.0;
    for (int r = 0; r < R; r++)
        for (int t = 0; t < len[r]; t++) {
            double d = x[(size_t)r * N + t] - mean;
            sq += d * d;
        }
    /* the unbiased variance, as TRL's masked_var(unbiased=True) */
    double var = n > 1.0 ? sq / n * (n / (n - 1.0)) : 0.0, scale = 1.0 / sqrt(var + 1e-8);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < N; t++) {
            size_t i = (size_t)r * N + t;
            x[i] = t < len[r] ? (float)((x[i] - mean) * scale) : 0.0f;
        }
}

/* One token's clipped policy loss; *grad = its derivative in logp. */
static double pg_token(double adv, double ratio, double eps, double *grad, bool *clipped) {
    double l1 = -adv * ratio, l2 = -adv * clampd(ratio, 1.0 - eps, 1.0 + eps);
    *clipped = l2 > l1;
    /* d ratio / d logp = ratio; the clipped branch is flat outside the range */
    bool inside = ratio > 1.0 - eps && ratio < 1.0 + eps;
    *grad = l1 >= l2 || inside ? -adv * ratio : 0.0;
    return l1 >= l2 ? l1 : l2;
}

/* One token's clipped value loss (before the 0.5 and vf_coef); *grad = d / d vpred. */
static double vf_token(double v, double old, double ret, double eps, double *grad, bool *clipped) {
    double vc = clampd(v, old - eps, old + eps);
    double l1 = (v - ret) * (v - ret), l2 = (vc - ret) * (vc - ret);
    *clipped = l2 > l1;
    bool inside = v > old - eps && v < old + eps;
    *grad = l1 >= l2 ? 2.0 * (v - ret) : inside ? 2.0 * (vc - ret) : 0.0;
    return l1 >= l2 ? l1 : l2;
}

void ppo_losses(const ppo_config *c, int R, int N, const int *len, const float *logp,
                const float *old_logp, const float *adv, const float *vpred,
                const float *old_values, const float *returns, ppo_stats *s, float *dlogp,
                float *dvalue) {
    memset(s, 0, sizeof *s);
    for (int r = 0; r < R; r++) s->tokens += len[r];
    double n = s->tokens > 0 ? s->tokens : 1.0;
    for (int r = 0; r < R; r++)
        for (int t = 0; t < N; t++) {
            size_t i = (size_t)r * N + t;
            dlogp[i] = dvalue[i] = 0.0f;
            if (t >= len[r]) continue;
            double diff = (double)logp[i] - old_logp[i], ratio = exp(diff), gp, gv;
            bool pclip, vclip;
            s->pg_loss += pg_token(adv[i], ratio, c->cliprange, &gp, &pclip) / n;
            s->vf_loss +=
                0.5 *
                vf_token(vpred[i], old_values[i], returns[i], c->cliprange_value, &gv, &vclip) / n;
            s->pg_clipfrac += pclip / n;
            s->vf_clipfrac += vclip / n;
            s->approxkl += 0.5 * diff * diff / n;
            s->ratio += ratio / n;
            dlogp[i] = (float)(gp / n);
            dvalue[i] = (float)(c->vf_coef * 0.5 * gv / n);
        }
    s->loss = s->pg_loss + c->vf_coef * s->vf_loss;
}

double ppo_kl_adapt(double beta, double kl, double target, double horizon, double n_steps) {
    double err = clampd(kl / target - 1.0, -0.2, 0.2);
    return beta * (1.0 + err * n_steps / horizon);
}

/* ---- the value head ----------------------------------------------------------------------- */

void ppo_values(const gpt *m, float *values) {
    const float *h = gpt_hidden(m), *w = m->p.scorew;
    int C = m->cfg.n_embd;
    size_t BT = (size_t)m->B * m->T;
    for (size_t i = 0; i < BT; i++) {
        float v = 0.0f;
        for (int c = 0; c < C; c++) v += w[c] * h[i * C + c];
        values[i] = v;
    }
}

void ppo_values_backward(gpt *m, const float *dvalues, float *dhidden) {
    const float *h = gpt_hidden(m), *w = m->p.scorew;
    float *gw = m->g.scorew;
    int C = m->cfg.n_embd;
    size_t BT = (size_t)m->B * m->T;
    for (size_t i = 0; i < BT; i++)
        for (int c = 0; c < C; c++) {
            gw[c] += dvalues[i] * h[i * C + c];
            dhidden[i * C + c] = dvalues[i] * w[c];
        }
}
