/* tokenizer — records' text and images as token ids, and back.
 *
 * Vocabulary layout (the same for every kind): the N base symbols first (256 bytes, K gray
 * levels or P palette colours), then BOS = N, EOS = N+1, PAD = N+2, then one token per class
 * from class_base = N+3.  vocab = class_base + number of classes.
 *   text:   [class] bytes... EOS        (BOS first with --bos; no class without a label)
 *   image:  class-or-BOS pixels...      (raster order; levels: one token per channel value,
 *                                        palette: one token per pixel, nearest colour)
 * BPE (lib/data/bpe.h) keeps GPT-2's ids instead: 256 + merges ordinary tokens, then the
 * special tokens; BOS = EOS = PAD = `<|endoftext|>` (GPT-2's one special, id 50256 with
 * GPT-2's own vocabulary), then the classes after the specials.
 * The description travels in the hdr field `tokenizer` so later stages decode without
 * flags; ktok_pack / ktok_from_obj write and read it.  A BPE description carries the whole
 * vocabulary (its merges as vocab.bpe's text, and the special names), not a path: a stream
 * or a checkpoint decodes on any machine. */
#ifndef KILN_TOKENIZER_H
#define KILN_TOKENIZER_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/bpe.h"
#include "data/image.h"

typedef enum { KTOK_BYTES, KTOK_LEVELS, KTOK_PALETTE, KTOK_BPE } ktok_kind;

typedef struct ktokenizer {
    ktok_kind kind;
    uint32_t levels;       /* LEVELS: K in 2..256 */
    uint8_t (*palette)[3]; /* PALETTE: npalette RGB colours, owned */
    uint32_t npalette;
    kbpe *bpe;                        /* BPE: the vocabulary, owned */
    uint32_t height, width, channels; /* images: the shape decoding rebuilds (0: unknown) */
    char **classes;                   /* owned, nclasses names */
    uint32_t nclasses;
    uint32_t bos, eos, pad, class_base, vocab;
} ktokenizer;

/* Set up a tokenizer of a kind (palette copied; classes taken over, may be NULL). */
void ktok_init_bytes(ktokenizer *t);
void ktok_init_levels(ktokenizer *t, uint32_t levels);
void ktok_init_palette(ktokenizer *t, const uint8_t (*palette)[3], uint32_t n);
/* BPE: takes b over. */
void ktok_init_bpe(ktokenizer *t, kbpe *b);
void ktok_set_classes(ktokenizer *t, char **classes, uint32_t n);
void ktok_free(ktokenizer *t);

/* The class token for a label, or -1 when the label is not a known class. */
int64_t ktok_class_token(const ktokenizer *t, const char *label, size_t len);
/* The class name of a token, or NULL. */
const char *ktok_class_name(const ktokenizer *t, uint32_t token);

/* Encoders append to out (capacity checked by the caller: text needs n+3, image
 * h*w*c+1).  first: the class token, or -1 for none (text) / BOS (image). */
size_t ktok_encode_text(const ktokenizer *t, const uint8_t *s, size_t n, int64_t first, bool bos,
                        int32_t *out);
size_t ktok_encode_image(const ktokenizer *t, const kimage *im, int64_t first, int32_t *out);
/* Decode: text bytes (specials and class tokens skipped) into out (capacity
 * n * ktok_max_bytes(t)); returns the byte count. */
size_t ktok_decode_text(const ktokenizer *t, const int32_t *tok, size_t n, uint8_t *out);
/* The most bytes one token decodes to (1 but for BPE). */
size_t ktok_max_bytes(const ktokenizer *t);
/* The bytes (text) or values (images) token id stands for: 0 for specials and classes.
 * Bits per byte divide by the sum of these over the targets. */
uint32_t ktok_symbol_bytes(const ktokenizer *t, int32_t id);
/* Text kinds (bytes, BPE) report bits per byte; image kinds bits per dim. */
bool ktok_is_text(const ktokenizer *t);

/* Image: the pixels after an optional leading class/BOS token, shaped by t's
 * height/width/channels (short sequences padded with black).  false if the shape is
 * unknown.  *class_token gets the leading class token or -1. */
bool ktok_decode_image(const ktokenizer *t, const int32_t *tok, size_t n, kimage *im,
                       int64_t *class_token);

/* The hdr map {kind, vocab, bos, eos, pad, classes, class_base, levels|palette, height,
 * width, channels}; BPE: {kind, vocab, bos, eos, pad, classes, class_base, merges (string:
 * vocab.bpe without its version line), specials (array of names), hash (hex FNV-1a 64 of
 * both, for people: kiln recomputes and checks it)}. */
void ktok_pack(const ktokenizer *t, msgpack_packer *pk);
/* Read it back; false with a reason in err. */
bool ktok_from_obj(const msgpack_object *o, ktokenizer *t, char *err, size_t errlen);

/* Class names, one a line (blank lines and a trailing CR ignored; duplicates refused). */
bool kclasses_load(const char *path, char ***names, uint32_t *n, char *err, size_t errlen);
void kclasses_free(char **names, uint32_t n);

/* Palette files: one colour a line, "R G B" in 0..255, '#' starts a comment. */
bool kpalette_load(const char *path, uint8_t (**palette)[3], uint32_t *n, char *err, size_t errlen);
bool kpalette_save(const char *path, const uint8_t (*palette)[3], uint32_t n, char *err,
                   size_t errlen);
/* k-means (k-means++ start, `iters` Lloyd rounds) over n RGB pixels; writes k colours
 * (sorted by luma, so palettes read dark to light).  Deterministic for a seed. */
void kpalette_kmeans(const uint8_t *rgb, size_t n, uint32_t k, int iters, uint64_t seed,
                     uint8_t (*out)[3]);
/* Index of the nearest palette colour (squared RGB distance, first wins ties). */
uint32_t kpalette_nearest(const uint8_t (*palette)[3], uint32_t n, const uint8_t rgb[3]);

/* Whether two tokenizers map tokens the same way (kind, levels/palette, specials, classes,
 * vocabulary); image shape is not compared. */
bool ktok_same(const ktokenizer *a, const ktokenizer *b);
/* "bytes, vocab 259" / "levels 16, 10 classes, vocab 29" into buf. */
void ktok_describe(const ktokenizer *t, char *buf, size_t n);

#endif
