/* rollout — K completions for each of many prompts at once, KV-cached and batched on the
 * model's decoder (lib/model/generate.h), with the log-probability of every drawn token under
 * the sampling policy: log_softmax(logits / temperature) over the full vocabulary, taken
 * before top-k/top-p truncation, so it equals a teacher-forced gpt_forward +
 * gpt_token_logprobs at the same temperature (temperature 0, greedy, records temperature 1's;
 * kgen_logprob).
 * What kiln rollout writes and PPO trains on, in-process:
 *
 *     krollout_gen *g = krollout_gen_create(m, pool);
 *     krollout_opts o = krollout_opts_default();  o.K = 4;  o.max_new = 64;  o.eos = tok.eos;
 *     krollout_batch b;
 *     krollout_generate(g, prompts, plen, n, &o, 0, &b);   row r: prompt r / K, draw r % K
 *     ... b.tokens[r * b.max_new ...], b.logprobs[...], b.lens[r], b.ended[r] ...
 *     krollout_batch_free(&b);  krollout_gen_free(g);
 *
 * A prompt and its completion always fit the context together (no sliding window, so the
 * logprobs are those of one forward over prompt + completion less its last token, which is
 * drawn and never fed): a prompt longer than n_ctx - max_new is cut to its last
 * n_ctx - max_new tokens (b.prompt_from says where).  max_new = n_ctx leaves one prompt
 * token: an image model's class token and its n_ctx pixels, the rows it was trained on. */
#ifndef KILN_ROLLOUT_H
#define KILN_ROLLOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "model/generate.h"
#include "model/gpt.h"
#include "model/pool.h"

typedef struct krollout_opts {
    int K;                  /* completions per prompt (>= 1) */
    int max_new;            /* tokens per completion at most (1..n_ctx) */
    ksampler s;             /* how tokens are drawn */
    const uint8_t *allowed; /* V flags of tokens that may be drawn (NULL: all; borrowed) */
    int32_t eos;            /* a row ends after drawing it (-1: never) */
    uint64_t seed;
} krollout_opts;

krollout_opts krollout_opts_default(void); /* K 1, max_new 64, temperature 1, eos -1 */

/* One call's results, rows = prompts * K. */
typedef struct krollout_batch {
    int rows, max_new;
    int32_t *tokens;  /* [rows, max_new]: row r's first lens[r] are its completion */
    float *logprobs;  /* [rows, max_new]: log p of each of them under the sampling policy */
    int *lens;        /* [rows] tokens drawn (the EOS included when the row ended on it) */
    bool *ended;      /* [rows] stopped on EOS (before or at max_new) */
    int *prompt_from; /* [prompts] the first prompt token the model saw (0 unless cut) */
} krollout_batch;

typedef struct krollout_gen krollout_gen;

/* A generator over m (borrowed; its LoRA adapters apply) with its KV cache made on first
 * use; sampling spread over pool (may be NULL). */
krollout_gen *krollout_gen_create(gpt *m, kpool *pool);
void krollout_gen_free(krollout_gen *g);

/* K completions of each of the n prompts (prompts[i]: plen[i] >= 1 tokens, each below the
 * vocabulary), all n * K rows in one batched decode.  Row r = i * K + k draws from the rng
 * stream first_row + r of o->seed (krng, KRNG_GENERATE), so a completion depends only on the
 * seed and its global row number, not on how prompts are split into calls: give the i-th
 * prompt of a stream first_row = i * K.  out is filled (its arrays malloc'd; free with
 * krollout_batch_free). */
void krollout_generate(krollout_gen *g, const int32_t *const *prompts, const int *plen, int n,
                       const krollout_opts *o, uint64_t first_row, krollout_batch *out);
void krollout_batch_free(krollout_batch *b);

/* ---- scoring: a reward model ------------------------------------------------------------- */

/* The scalar head (GPT_HEAD_SCALAR) of m at the last token of each of n sequences (seqs[i]:
 * lens[i] >= 1 tokens; one longer than the context keeps its last n_ctx), in one padded
 * forward: out[i], what gpt_scalar gives for sequence i alone. */
void krollout_rewards(gpt *m, const int32_t *const *seqs, const int *lens, int n, float *out);

#endif
