/* ppo — the arithmetic of PPO for RLHF (Schulman et al. 2017; Ziegler et al. 2019), as TRL's
 * PPOTrainer and DeepSpeed-Chat do it, on plain arrays, forward and backward side by side.
 * `kiln ppo` (lib/run/pporun.h) runs the loop around it; docs/stages-rlhf.md explains the choices.
 *
 * A batch is R completions padded to N tokens: arrays are [R, N] row-major and row r's first
 * len[r] entries count (its completion tokens, the EOS included when it ended on one).
 *
 *   score      the reward stage's number, minus missing_eos_penalty when the completion never
 *              ended, clipped to +-score_clip (DeepSpeed-Chat's clip_reward_value 5)
 *   kl         k1 = logp - ref_logp per token (TRL's default estimator)
 *   rewards    -beta * kl per token, the score added at the last completion token
 *   GAE        delta_t = r_t + gamma V_{t+1} - V_t (V past the end is 0),
 *              A_t = delta_t + gamma lambda A_{t+1}; returns = A + V
 *   whiten     advantages (x - mean) / sqrt(var + 1e-8) over the counted tokens, var with
 *              Bessel's correction (TRL's masked_whiten, shift_mean)
 *   losses     ratio = exp(logp - old_logp);
 *              pg = mean max(-A ratio, -A clip(ratio, 1-eps, 1+eps));
 *              vf = 0.5 mean max((V - R)^2, (clip(V, V_old-eps_v, V_old+eps_v) - R)^2);
 *              loss = pg + vf_coef vf
 * The value head itself (a vector on the trunk's final hidden states) is at the end. */
#ifndef KILN_PPO_H
#define KILN_PPO_H

#include <stdbool.h>
#include <stddef.h>

#include "model/gpt.h"

typedef struct ppo_config {
    double kl_coef;             /* beta (0.05) */
    double gamma, lam;          /* GAE (1, 0.95) */
    double cliprange;           /* policy ratio clip (0.2) */
    double cliprange_value;     /* value clip (0.2) */
    double vf_coef;             /* weight of the value loss (0.1, TRL) */
    double score_clip;          /* |score| bound (5) */
    double missing_eos_penalty; /* subtracted from the score of a completion that never ended (1) */
} ppo_config;

void ppo_config_default(ppo_config *c);

/* The score PPO uses for a completion the reward stage scored `raw`. */
double ppo_score(const ppo_config *c, double raw, bool ended);

/* Per-token k1 KL and rewards: kl = logp - ref, rewards = -beta kl with scores[r] added at
 * the row's last token.  Positions past len[r] get 0. */
void ppo_rewards(const ppo_config *c, int R, int N, const int *len, const float *logp,
                 const float *ref_logp, const double *scores, float *kl, float *rewards);

/* Generalised advantage estimation per row, right to left: adv and returns [R, N]. */
void ppo_gae(const ppo_config *c, int R, int N, const int *len, const float *rewards,
             const float *values, float *adv, float *returns);

/* x whitened in place over the counted positions (the others set to 0). */
void ppo_whiten(int R, int N, const int *len, float *x);

/* What one minibatch's losses came to (means over its counted tokens). */
typedef struct ppo_stats {
    double pg_loss, vf_loss, loss;
    double pg_clipfrac, vf_clipfrac;
    double approxkl; /* 0.5 mean (logp - old_logp)^2 */
    double ratio;    /* mean ratio */
    double tokens;
} ppo_stats;

/* The clipped losses of a minibatch and their gradients: dlogp [R, N] = d loss / d logp and
 * dvalue [R, N] = d loss / d V (0 where nothing counts). */
void ppo_losses(const ppo_config *c, int R, int N, const int *len, const float *logp,
                const float *old_logp, const float *adv, const float *vpred,
                const float *old_values, const float *returns, ppo_stats *s, float *dlogp,
                float *dvalue);

/* The adaptive KL controller (Ziegler et al. 2019, TRL's AdaptiveKLController): after a batch
 * of n_steps samples whose summed KL per sample was kl, beta *= 1 + clip(kl/target - 1, +-0.2)
 * n_steps / horizon. */
double ppo_kl_adapt(double beta, double kl, double target, double horizon, double n_steps);

/* ---- the value head: V[b, t] = w . h[b, t] on the trunk's final hidden states ------------
 * (TRL's AutoModelForCausalLMWithValueHead, less its bias: ln_f's bias gives w . lnfb, a
 * constant per model).  w is the model's scalar head (score.weight [1, C], GPT_HEAD_SCALAR),
 * so it trains, is saved and resumes as any tensor.  After gpt_forward; values [B, T]. */
void ppo_values(const gpt *m, float *values);
/* The head's backward: score.weight's gradient += sum dvalues h, and dhidden [B, T, C] =
 * dvalues w, the trunk's share (gpt_backward_weighted_hidden takes it). */
void ppo_values_backward(gpt *m, const float *dvalues, float *dhidden);

#endif
