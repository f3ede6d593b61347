/* generate — running a trained GPT to produce tokens: the sampling rule (temperature, top-k,
 * top-p) and a generation loop with a sliding window, over the model's own decoder
 * (gpt_decode in lib/model/gpt.h: the training forward's kernels with a key/value cache, so
 * one new token costs O(context), not a full forward, and its logits are gpt_forward's).
 * Used by kiln sample and kiln eval --samples, and for RL rollouts.
 *
 * Many rows at once, each at its own length: prompts may differ in length, every step feeds
 * one token of each row still drawing in one batch, and a row that has ended costs nothing.
 * The model's kernels run on the model's pool; sampling spreads the rows over `pool`.
 *
 *     kgen *g = kgen_create(m, rows, pool);
 *     ksampler s = ksampler_default();  s.temperature = 0.8;
 *     kgen_run(g, prompts, np, 200, &s, allowed, eos, seed, on_token, ctx, out, lens);
 *     kgen_free(g); */
#ifndef KILN_GENERATE_H
#define KILN_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "model/gpt.h"
#include "model/pool.h"
#include "core/rng.h"
#include "stream/stream.h"
#include "data/tokenizer.h"

/* The rng stream of sampling (lib/core/rng.h's streams stay below 16). */
#define KRNG_GENERATE 16

typedef struct kgen kgen;

/* A decoder over m (borrowed: m must outlive it) for `rows` rows; sampling threaded over
 * rows with pool (may be NULL: one thread).  The cache is made on first use, as big as that
 * use needs (kgen_feed: n_ctx positions). */
kgen *kgen_create(gpt *m, int rows, kpool *pool);
void kgen_free(kgen *g);
/* Rows in lockstep, one token each per call: */
/* Forget every row's context: the next token goes to position 0. */
void kgen_reset(kgen *g);
/* Tokens each row has seen so far (= the position the next token takes). */
int kgen_pos(const kgen *g);
/* Append tokens[r] to row r and return the logits for the next token, [rows, vocab]
 * (valid until the next call).  The position must be below n_ctx. */
const float *kgen_feed(kgen *g, const int32_t *tokens);

typedef struct ksampler {
    double temperature; /* 0: greedy (argmax); default 1 */
    int top_k;          /* keep the k most likely tokens; 0: all */
    double top_p;       /* keep the smallest set whose probability reaches p; 1: all */
} ksampler;

ksampler ksampler_default(void);

/* Draw a token from logits [V].  allowed: NULL, or V flags (1 = may be drawn).
 * work: 2*V floats of scratch. */
int32_t ksample_pick(const ksampler *s, const float *logits, int V, const uint8_t *allowed,
                     krng *rng, float *work);

/* log_softmax(logits / temperature)[token] over all V logits, in double (temperature <= 0:
 * at 1): the sampling policy's log-probability of a drawn token, before top-k/top-p. */
float kgen_logprob(const float *logits, int V, double temperature, int32_t token);

/* Called for every generated token of a row; return false to stop the whole run. */
typedef bool (*kgen_token_fn)(void *ctx, int row, int32_t token);

/* Row r starts from its prompt prompts[r * np ...] (np >= 1 tokens each) and gets up to n_new
 * tokens in out[row * n_new ...]; a row ends at `stop` (-1: never; the stop token is stored and
 * reported).  Row r draws from krng (seed, r, 0, KRNG_GENERATE), so a row's text depends
 * only on the seed and its index.  A prompt longer than n_ctx starts from its last n_ctx
 * tokens; past n_ctx the window slides: that row's context restarts from its last n_ctx/2
 * tokens.  Returns how many tokens each row got, in lens (rows).  fn sees each step's tokens
 * in row order.  Starts every row afresh: kgen_feed afterwards starts at position 0. */
void kgen_run(kgen *g, const int32_t *prompts, int np, int n_new, const ksampler *s,
              const uint8_t *allowed, int32_t stop, uint64_t seed, kgen_token_fn fn, void *ctx,
              int32_t *out, int *lens);
/* kgen_run with prompts of different lengths: row r's prompt is the first plen[r] (1..np)
 * tokens of prompts[r * np ...] (plen NULL: np each). */
void kgen_run_ragged(kgen *g, const int32_t *prompts, int np, const int *plen, int n_new,
                     const ksampler *s, const uint8_t *allowed, int32_t stop, uint64_t seed,
                     kgen_token_fn fn, void *ctx, int32_t *out, int *lens);

/* kgen_run_ragged for RL rollouts: row r draws from the rng stream first_row + r (0: as
 * kgen_run_ragged), and logp (NULL: not wanted) gets, laid out as out, each drawn token's
 * log-probability under the sampling policy: log_softmax(logits / temperature) over the full
 * vocabulary, before top-k/top-p and `allowed` (temperature <= 0: at temperature 1). */
void kgen_run_logp(kgen *g, const int32_t *prompts, int np, const int *plen, int n_new,
                   const ksampler *s, const uint8_t *allowed, int32_t stop, uint64_t seed,
                   uint64_t first_row, int32_t *out, float *logp, int *lens);

/* ---- with a tokenizer: what kiln sample and kiln eval --samples share --------------------- */

/* The tokens generation may draw: the base symbols (bytes, levels, colours), and EOS for
 * text.  V flags, malloc'd. */
uint8_t *kgen_allowed(const ktokenizer *t);

/* A text prompt as tokens (the bytes, no EOS); an empty prompt is [EOS], the document
 * boundary the model saw in packed training.  *n gets the count; malloc'd. */
int32_t *kgen_text_prompt(const ktokenizer *t, const char *text, int *n);

/* n generated `sample` records {id, epoch 0, src, step, text | image, label}: text continues
 * `prompt` for up to text_len tokens (ends at EOS); images start from class token `cls`
 * (-1: classes in turn, or BOS without classes) and fill the tokenizer's H*W*C. */
typedef struct kgen_request {
    int n;
    const char *prompt; /* text */
    int64_t cls;        /* images */
    int text_len;
    ksampler s;
    uint64_t seed, step;
    const char *src;
} kgen_request;
/* R images, row r generated after token first[r] (a class token or BOS), into out[r]
 * (zeroed kimages in; free each with kimage_free). */
void kgen_images(gpt *m, const ktokenizer *t, kpool *pool, const int32_t *first, int R,
                 const ksampler *s, uint64_t seed, kimage *out);
/* The first token of image r: class token cls, else the classes in turn, else BOS. */
int32_t kgen_first_token(const ktokenizer *t, int64_t cls, int r);

void kgen_write_samples(kwriter *w, gpt *m, const ktokenizer *t, kpool *pool,
                        const kgen_request *q);

#endif
