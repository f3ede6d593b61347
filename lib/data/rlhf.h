/* rlhf — the RLHF records: `rollout` (a prompt's completion with the tokens and per-token
 * log-probabilities it was drawn with, maybe a reward) and `pref` (a preference between two
 * completions of one prompt), their field names, and helpers to write them and read them back
 * (docs/stages-rlhf.md describes the fields; kiln rollout, judge, reward, label, logps, ppo and
 * the dpo/reward objectives all speak them).
 *
 * Reading copies the token and logprob vectors out (msgpack data may be unaligned) into
 * malloc'd arrays; strings point into the record and are valid while it is. */
#ifndef KILN_RLHF_H
#define KILN_RLHF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/stream.h"

/* ---- field names ------------------------------------------------------------------------ */

#define KROLLOUT "rollout" /* record type */
#define KPREF    "pref"    /* record type */

/* shared */
#define KRL_ID            "id"
#define KRL_EPOCH         "epoch"
#define KRL_SRC           "src"
#define KRL_PROMPT        "prompt"
#define KRL_PROMPT_TOKENS "prompt_tokens" /* I32 [P] */

/* rollout */
#define KRL_K                 "k" /* which of the prompt's K completions: 0..K-1 */
#define KRL_COMPLETION        "completion"
#define KRL_COMPLETION_TOKENS "completion_tokens" /* I32 [N], EOS included when it ended */
#define KRL_LOGPROBS          "logprobs"          /* F32 [N] */
#define KRL_ENDED             "ended"             /* bool: stopped on EOS before max-new */
#define KRL_TEMPERATURE       "temperature"       /* f64 */
#define KRL_LABEL             "label"             /* image models: the class name */
#define KRL_IMAGE             "image"             /* image models: U8 [H,W,C] */
#define KRL_REWARD            "reward"            /* f64, added by a reward stage */
#define KRL_JUDGE             "judge" /* text: "afinn", "words", "reward:FILE", "cmd:PROGRAM", ... */

/* pref */
#define KPREF_CHOSEN          "chosen"
#define KPREF_REJECTED        "rejected"
#define KPREF_BY              "by" /* "person", "judge:afinn", ... */
#define KPREF_CHOSEN_TOKENS   "chosen_tokens"
#define KPREF_REJECTED_TOKENS "rejected_tokens"
#define KPREF_CHOSEN_SCORE    "chosen_score"
#define KPREF_REJECTED_SCORE  "rejected_score"
#define KPREF_REF_CHOSEN      "ref_chosen_logps"   /* f64, after kiln logps (TRL's name) */
#define KPREF_REF_REJECTED    "ref_rejected_logps" /* f64 */

/* A string field: bytes and length, not NUL-terminated (NULL: absent). */
typedef struct kstrv {
    const char *s;
    size_t n;
} kstrv;

/* A token vector: malloc'd when read (NULL, n 0: absent). */
typedef struct ktokv {
    int32_t *tok;
    int n;
} ktokv;

/* ---- rollout ---------------------------------------------------------------------------- */

typedef struct krollout {
    uint64_t id, epoch, k;
    kstrv src, prompt, completion, label, judge;
    ktokv prompt_tokens, completion_tokens;
    float *logprobs; /* [completion_tokens.n] */
    bool ended;
    double temperature;
    bool has_reward;
    double reward;
    ktensor image; /* image.data NULL: none (a view into the record when read) */
} krollout;

/* Write r as one `rollout` record (absent optional fields left out). */
void krollout_write(kwriter *w, const krollout *r);

/* Read a `rollout` record (any type with completion_tokens and logprobs is accepted).  false
 * with a message in err (naming the field) when a field is missing or malformed: the
 * required ones are id, completion_tokens and logprobs of the same length; everything else
 * is optional.  Free with krollout_free. */
bool krollout_read(const krec *rec, krollout *r, char *err, size_t errsz);
void krollout_free(krollout *r);
/* Whether two rollout records are completions of the same prompt: the same id, epoch and
 * src (what groups a prompt's K rollouts). */
bool krollout_same_prompt(const krec *a, const krec *b);

/* Copy rec through with `reward` and `judge` set (replacing any it had): what a reward stage
 * writes for each rollout. */
void krollout_write_scored(kwriter *w, const krec *rec, double reward, const char *judge);

/* ---- pref ------------------------------------------------------------------------------- */

typedef struct kpref {
    uint64_t id, epoch;
    kstrv src, prompt, chosen, rejected, by;
    ktokv prompt_tokens, chosen_tokens, rejected_tokens; /* optional */
    bool has_scores;
    double chosen_score, rejected_score;
    bool has_ref;
    double ref_chosen_logps, ref_rejected_logps;
} kpref;

/* A record a trainer can use as a preference: any type with prompt, chosen and rejected text
 * (a `pref`, or TRL's JSON lines through kiln load jsonl:). */
bool kpref_is(const krec *rec);

/* Write p as one `pref` record (optional fields: tokens when n > 0, scores when has_scores,
 * reference log-probabilities when has_ref). */
void kpref_write(kwriter *w, const kpref *p);

/* Read a preference (kpref_is): false with a message naming the field when prompt, chosen or
 * rejected is missing or not text, or an optional field is malformed.  Free with
 * kpref_free. */
bool kpref_read(const krec *rec, kpref *p, char *err, size_t errsz);
void kpref_free(kpref *p);

#endif
