/* prefpair — a preference pair as two token rows, for the trainers and stages that score
 * one (the reward model and DPO objectives, kiln logps, kiln eval).
 *
 * A pair is a record with `chosen` and `rejected`: a `pref` record (docs/rlhf.md), or any
 * other type of that shape (kiln load jsonl: of TRL's {"prompt","chosen","rejected"} lines
 * gives `sample` records).  Tokens come from prompt_tokens, chosen_tokens, rejected_tokens
 * (I32 [n]) when the record has them (rollouts), else from the texts prompt, chosen and
 * rejected with the model's tokenizer: the prompt without EOS, each completion with EOS, so
 * a row is prompt then completion as TRL's DPO and reward trainers build it.  An empty
 * prompt becomes EOS, the document boundary the model learnt text after.  A row longer than
 * the limit keeps the end of its prompt (TRL's keep_end) and, if it must, the start of its
 * completion. */
#ifndef KILN_PREFPAIR_H
#define KILN_PREFPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"
#include "stream/stream.h"

typedef struct kprefpair {
    int32_t *row[2]; /* [0] prompt + chosen, [1] prompt + rejected */
    int len[2];      /* tokens in each row */
    int prompt[2];   /* of them, the prompt's */
    size_t cap[2];
} kprefpair;

/* Whether the record is one to train on: a `pref`, or any record with chosen and rejected. */
bool kpref_like(const krec *r);

/* The record's two rows, each at most max_len tokens (>= 2); tok may be NULL when the
 * record carries tokens.  Token ids are checked against vocab.  0, or 65 with
 * "record N: why" in err. */
int kprefpair_read(kprefpair *p, const krec *r, const ktokenizer *tok, int vocab, int max_len,
                   char *err, size_t errsz);
void kprefpair_free(kprefpair *p);

/* Rows padded to T = the longer row, for the scalar head: x [2, T], mask [2, T] (1 on every
 * token: last-position pooling scores the whole prompt + completion).  Returns T. */
int kprefpair_rows(const kprefpair *p, int32_t *x, uint8_t *mask);
/* Teacher-forced rows for completion log-probabilities: x = row[:-1], y = row[1:], mask 1 on
 * the completion's targets; T = the longer row - 1.  Returns T. */
int kprefpair_lm_rows(const kprefpair *p, int32_t *x, int32_t *y, uint8_t *mask);

#endif
