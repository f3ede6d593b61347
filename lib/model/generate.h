/* generate — running a trained GPT to produce tokens: an inference-only forward pass with a
 * key/value cache (one new token per row costs O(context), not a full forward), the
 * sampling rule (temperature, top-k, top-p) and a generation loop with a sliding window.
 * Used by kiln sample and kiln eval --samples.
 *
 * Rows advance in lockstep (all at the same position), so a batch of images of one shape,
 * or several continuations of one prompt, share every matrix product.  The arithmetic is
 * plain float like lib/model/gpt's forward, so logits agree with gpt_forward to ~1e-5.
 *
 *     kgen *g = kgen_create(m, rows, pool);
 *     ksampler s = ksampler_default();  s.temperature = 0.8;
 *     kgen_run(g, prompts, np, 200, &s, allowed, eos, seed, on_token, ctx, out);
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

/* A decoder over m's weights (borrowed: m must outlive it) for `rows` rows, threaded over
 * rows with pool (may be NULL: one thread). */
kgen *kgen_create(const gpt *m, int rows, kpool *pool);
void kgen_free(kgen *g);
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

/* Called for every generated token of a row; return false to stop the whole run. */
typedef bool (*kgen_token_fn)(void *ctx, int row, int32_t token);

/* Row r starts from its prompt prompts[r * np ...] (np >= 1 tokens each) and gets up to n_new
 * tokens in out[row * n_new ...]; a row ends at `stop` (-1: never; the stop token is stored and
 * reported).  Row r draws from krng (seed, r, 0, KRNG_GENERATE), so a row's text depends
 * only on the seed and its index.  Past n_ctx the window slides: the context restarts
 * from the last n_ctx/2 tokens.  Returns how many tokens each row got, in lens (rows). */
void kgen_run(kgen *g, const int32_t *prompts, int np, int n_new, const ksampler *s,
              const uint8_t *allowed, int32_t stop, uint64_t seed, kgen_token_fn fn, void *ctx,
              int32_t *out, int *lens);

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
void kgen_images(const gpt *m, const ktokenizer *t, kpool *pool, const int32_t *first, int R,
                 const ksampler *s, uint64_t seed, kimage *out);
/* The first token of image r: class token cls, else the classes in turn, else BOS. */
int32_t kgen_first_token(const ktokenizer *t, int64_t cls, int r);

void kgen_write_samples(kwriter *w, const gpt *m, const ktokenizer *t, kpool *pool,
                        const kgen_request *q);

#endif
