/* search — exact nearest neighbours by inner product: for each query the k vectors with the
 * highest dot product (the cosine, when both sides are L2-normalised, as kiln's embeddings
 * are).  The scores are matrix products through lib/model/gemm.h, a block of queries
 * against a slab of vectors at a time so both stay in cache, each query keeping its best k
 * in a small heap; threads take blocks of 48 queries (one query runs on one thread).  Used by `kiln
 * search` and retrieval evaluation. */
#ifndef KILN_SEARCH_H
#define KILN_SEARCH_H

#include <stdint.h>

#include "model/pool.h"

/* queries [Q, C] against vectors [N, C] (rows contiguous): idx [Q, k] and score [Q, k],
 * best first (ties: the lower index first).  k is capped at N; rows past it get idx -1.
 * pool may be NULL (one thread). */
void ksearch_topk(kpool *pool, const float *vectors, int64_t N, const float *queries, int Q, int C,
                  int k, int64_t *idx, float *score);

#endif
