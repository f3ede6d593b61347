/* dpo — Direct Preference Optimization on preference pairs with the reference model's
 * log-probabilities precomputed (kiln logps adds ref_chosen_logps and ref_rejected_logps,
 * TRL's precompute_ref_log_probs), as TRL's DPOTrainer computes it.
 *
 * For a pair (lib/data/prefpair.h), pi_c and pi_r are the policy's summed log-probabilities
 * of the chosen and rejected completion tokens given the prompt, ref_c and ref_r the
 * reference's; z = (pi_c - ref_c) - (pi_r - ref_r) and
 *     sigmoid:  loss = -(1 - eps) log sigmoid(beta z) - eps log sigmoid(-beta z)
 *               (eps: --label-smoothing, conservative DPO; 0 is the original DPO)
 *     ipo:      loss = (z - 1 / (2 beta))^2 on log-probabilities averaged over each
 *               completion's tokens, as TRL's IPO (the reference's summed ones too: kiln
 *               logps writes sums)
 * Metrics, TRL's: rewards/chosen = beta (pi_c - ref_c), rewards/rejected, rewards/accuracies
 * (chosen > rejected), rewards/margins, logps/chosen = pi_c, logps/rejected = pi_r.  The
 * engine's --accum pairs make one optimizer step (their mean, as TRL's batch mean).  The
 * gradient goes through gpt_backward_weighted, so --lora and --freeze work as for LM
 * training. */
#ifndef KILN_DPO_H
#define KILN_DPO_H

#include <stdbool.h>

#include "run/objective.h"

typedef struct kdpo_opts {
    double beta;            /* 0.1 */
    double label_smoothing; /* 0 */
    bool ipo;
} kdpo_opts;

kdpo_opts kdpo_defaults(void);
kobjective kdpo_objective(const kdpo_opts *o);

/* The loss of one pair from its log-probabilities pi[2], ref[2] ({chosen, rejected}, averaged
 * already for IPO); d (may be NULL) gets dloss/dpi. */
double kdpo_pair_loss(const double pi[2], const double ref[2], const kdpo_opts *o, double d[2]);

/* Summed log-probabilities of a tokenized pair's completion tokens given their prompts (TRL's
 * definition), out[2] = {chosen, rejected}, by a teacher-forced gpt_forward that a backward
 * may follow.  x, y, mask: scratch of 2 * (max row tokens) each.  Returns T, the row length
 * of that forward. */
struct kprefpair;
int kdpo_logps(gpt *m, const struct kprefpair *p, int32_t *x, int32_t *y, uint8_t *mask,
               float out[2]);

#endif
