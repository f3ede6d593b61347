/* bpe — GPT-2's byte-level BPE: the vocabulary files, encoding, decoding and learning.
 *
 * A vocabulary is GPT-2's layout (the layout tiktoken's r50k_base checks): ids 0..255 are the
 * 256 bytes in GPT-2's bytes_to_unicode order, id 256+i is merge i of vocab.bpe (the pair's
 * bytes joined), then the special tokens (`<|endoftext|>` first).  On disk it is GPT-2's two
 * files: `encoder.json` (token string -> id, bytes written with bytes_to_unicode) and
 * `vocab.bpe` (`#version: 0.2`, then one merge "A B" a line, in rank order).  kiln reads
 * exactly this layout and refuses others with the file and the first disagreement.
 *
 * Encoding: GPT-2's pre-split pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * implemented by hand over UTF-8, with \p{L}, \p{N} and \s from lib/data/bpe_classes.h
 * (JavaScript's \s, as the reference encoders in Node.js use), then the lowest-ranked merge
 * of adjacent tokens, leftmost first, until none applies.  A byte that is not part of valid
 * UTF-8 counts as one character of its own outside \p{L}, \p{N} and \s (so it joins the
 * punctuation runs); byte-level tokens cover every byte, so decode(encode(x)) = x for every
 * byte string.  Text never produces special tokens: "<|endoftext|>" in text is ordinary text.
 *
 * Errors: functions that read files or descriptions return false with "FILE: reason" in
 * err. */
#ifndef KILN_BPE_H
#define KILN_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kbpe kbpe;

/* The special token every kiln vocabulary has: end of text (also BOS and PAD). */
#define KBPE_EOT "<|endoftext|>"
/* The longest token kiln reads or learns, in bytes (GPT-2's longest is 128). */
#define KBPE_MAX_TOKEN 1024

/* Read DIR/encoder.json and DIR/vocab.bpe. */
kbpe *kbpe_load(const char *dir, char *err, size_t errlen);
/* Build from the merges text (vocab.bpe's lines without the version line) and the special
 * token names; `where` names the source in messages. */
kbpe *kbpe_from_merges(const char *merges, size_t len, const char *const *specials,
                       uint32_t nspecials, const char *where, char *err, size_t errlen);
void kbpe_free(kbpe *b);

/* Write DIR/encoder.json and DIR/vocab.bpe (DIR must exist). */
bool kbpe_save(const kbpe *b, const char *dir, char *err, size_t errlen);

/* Sizes: merges, ordinary tokens (256 + merges), special tokens, all ids. */
uint32_t kbpe_nmerges(const kbpe *b);
uint32_t kbpe_nbase(const kbpe *b);
uint32_t kbpe_nspecials(const kbpe *b);
const char *kbpe_special(const kbpe *b, uint32_t i);
/* The id of a special token by name, or -1. */
int64_t kbpe_special_id(const kbpe *b, const char *name);
/* The merges as vocab.bpe's body (no version line, '\n' after each), malloc'd; *len bytes. */
char *kbpe_merges_text(const kbpe *b, size_t *len);
/* FNV-1a 64 of the merges and special names: equal for equal vocabularies. */
uint64_t kbpe_hash(const kbpe *b);
/* The longest token in bytes. */
uint32_t kbpe_max_bytes(const kbpe *b);

/* The bytes a token stands for (special tokens: none, *len = 0). */
const uint8_t *kbpe_token_bytes(const kbpe *b, uint32_t id, uint32_t *len);

/* Encode n bytes, appending at most n ids to out; returns the count. */
size_t kbpe_encode(const kbpe *b, const uint8_t *s, size_t n, int32_t *out);
/* Decode ids into bytes (ids outside the ordinary tokens skipped); out holds at least
 * n * kbpe_max_bytes(b) bytes.  Returns the byte count. */
size_t kbpe_decode(const kbpe *b, const int32_t *ids, size_t n, uint8_t *out);

/* The pre-split: the end of the piece starting at s[i] (i < n). */
size_t kbpe_split_next(const uint8_t *s, size_t n, size_t i);

/* ---- learning --------------------------------------------------------------------------- */

typedef struct kbpe_learner kbpe_learner;

kbpe_learner *kbpe_learner_new(void);
/* Count the pre-split pieces of one text. */
void kbpe_learner_add(kbpe_learner *l, const uint8_t *s, size_t n);
/* Learn up to vocab - 256 - (the specials, <|endoftext|> included) merges: the most frequent
 * adjacent pair of tokens, counted over the distinct pieces (ties: the smaller pair of ids, so the
 * result is deterministic), never across pieces; stops early when no pair occurs twice.  The
 * specials are `<|endoftext|>` first, then `specials` (a repeated `<|endoftext|>` is dropped). NULL
 * with a reason if vocab cannot hold the bytes and the specials. */
kbpe *kbpe_learn(kbpe_learner *l, uint32_t vocab, const char *const *specials, uint32_t nspecials,
                 char *err, size_t errlen);
/* Pieces counted so far (distinct, total). */
void kbpe_learner_counts(const kbpe_learner *l, uint64_t *distinct, uint64_t *total);
void kbpe_learner_free(kbpe_learner *l);

#endif
