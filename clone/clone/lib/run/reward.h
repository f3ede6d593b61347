/* reward — a reward model: the Bradley–Terry objective on preference pairs, as TRL's
 * RewardTrainer trains one.
 *
 * The model has the scalar head (GPT_HEAD_SCALAR: score.weight on the final hidden state at
 * the last token of prompt + completion).  For each pair (lib/data/prefpair.h) with rewards
 * r_c (chosen) and r_r (rejected):
 *     loss = -log sigmoid(r_c - r_r) + center * (r_c + r_r)^2
 * center is TRL's center_rewards_coefficient (0: off), which keeps the rewards near zero.
 * The engine's --accum pairs make one optimizer step, so the loss is their mean, as TRL's
 * batch mean.  Metrics (TRL's names where it has them): accuracy (r_c > r_r), margin
 * (r_c - r_r), and the rewards' min, mean and max (min_reward, mean_reward, max_reward) of
 * the pair's two completions (the engine averages them over pairs: TRL takes the batch's).
 *
 * With --init an LM checkpoint, the trunk is the base's and score.weight starts fresh
 * (N(0, 0.02), lib/model/gpt.h); the checkpoints it writes are reward models (config head
 * "scalar") that kiln eval scores pairs with. */
#ifndef KILN_REWARD_H
#define KILN_REWARD_H

#include "run/objective.h"

typedef struct kreward_opts {
    double center; /* center_rewards_coefficient, 0 by default */
} kreward_opts;

kobjective kreward_objective(const kreward_opts *o);

/* The pair loss on its own (for tests and evaluation): rewards r[2] = {chosen, rejected};
 * d (may be NULL) gets dloss/dr. */
double kreward_pair_loss(const float r[2], double center, float d[2]);

/* The rewards of a tokenized pair, r[2] = {chosen, rejected}, from a scalar-head model
 * (forward only; kiln eval's pairwise accuracy).  x, mask: scratch of 2 * max row tokens. */
struct kprefpair;
void kreward_score_pair(gpt *m, const struct kprefpair *p, int32_t *x, uint8_t *mask, float r[2]);

#endif
