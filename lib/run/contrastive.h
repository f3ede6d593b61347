/* contrastive — InfoNCE with in-batch negatives on `pairs` records: what sentence-
 * transformers calls MultipleNegativesRankingLoss (and, symmetric, its Symmetric variant,
 * CLIP's loss), for training embedding models.
 *
 * A `pairs` record holds B anchors and their B positives as token rows, and optionally K
 * hard negatives per anchor, all padded to one length T:
 *     anchor, positive   I32 [B, T]      anchor_mask, positive_mask   U8 [B, T] (1 = a token)
 *     negative           I32 [B*K, T]    negative_mask                U8 [B*K, T]
 *     group              I64 [B], optional: pairs of one group (two pairs of one class) are
 *                        not each other's negatives, in either direction: they are left out
 *                        of the softmax (GISTEmbed's false-negative filter), or, with
 *                        group_positives, count as positives too (SupCon: the loss averages
 *                        -log softmax over all of them)
 * Every row is embedded as the pooled final hidden state (mean over its mask, or its last
 * token), L2-normalised.  With s(a, c) = scale * cos(a, c) and candidates c = the B
 * positives then all negatives, the loss is the mean over anchors i of
 *     -log softmax_j s(a_i, c_j) [j = i]
 * and, symmetric, the mean of that and of the positives' own direction
 *     -log softmax_i s(a_i, p_j) [i = j]   over the anchors.
 * Metric `accuracy`: the share of anchors whose best candidate is a positive (their own, or
 * with group_positives one of their group). */
#ifndef KILN_CONTRASTIVE_H
#define KILN_CONTRASTIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "run/objective.h"

typedef struct kcontrastive_opts {
    double scale;         /* 20, as sentence-transformers */
    bool symmetric;       /* add the positive -> anchor direction */
    gpt_pool_mode pool;   /* GPT_POOL_MEAN (default), _LAST or _WEIGHTED */
    bool group_positives; /* pairs of one group are each other's positives (SupCon), not
                             left out */
} kcontrastive_opts;

kcontrastive_opts kcontrastive_defaults(void);
kobjective kcontrastive_objective(const kcontrastive_opts *o);

/* The loss and the gradient with respect to the unnormalised embeddings, on its own (for
 * tests and evaluation): rows [n_anchor + n_cand, C], anchors first, then candidates (the
 * n_anchor positives first).  group (may be NULL) [n_anchor]: the pairs' groups, as the
 * record's.  d (may be NULL) gets dloss/drows; *accuracy (may be NULL) the in-batch top-1
 * accuracy. */
double kcontrastive_loss(const float *rows, int n_anchor, int n_cand, int C, const int64_t *group,
                         const kcontrastive_opts *o, float *d, double *accuracy);

#endif
