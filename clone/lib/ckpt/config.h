/* config — the one place a model's shape (gpt_config) is named, written and read back:
 * the presets `kiln train --model` knows, the `config` map of a ckpt record, the "config"
 * JSON of a checkpoint file's __metadata__, and the check that a tensor from a checkpoint
 * has the shape that config implies.
 *
 * The config map, in a record or as JSON (docs/architecture.md, "Records"):
 *     {"n_layer": 4, "n_embd": 256, "n_head": 4, "n_ctx": 256, "vocab": 259, "head": "lm"}
 * head is "lm" (tied output head) or "scalar" (score.weight, reward and value models); an
 * absent head reads as "lm".  The readers return 0 or 65 with "WHERE: why" in err: they
 * never exit, so a caller decides what a bad file costs. */
#ifndef KILN_CONFIG_H
#define KILN_CONFIG_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "data/json.h"
#include "model/gpt.h"
#include "core/tensor.h"

/* The shapes of --model NAME ("tiny", "small", "char"); false for an unknown name. */
bool kcfg_preset(const char *name, gpt_config *c);
/* "tiny, small, char": for messages and help. */
const char *kcfg_preset_names(void);

/* Pack c as the config map of a ckpt record. */
void kcfg_pack(msgpack_packer *pk, const gpt_config *c);
/* c as the JSON object of __metadata__ "config" into buf (at least 160 bytes). */
void kcfg_json(const gpt_config *c, char *buf, size_t n);

/* Read every field from a record's config map / a file's config JSON; all five sizes must
 * be there.  The result passes gpt_config_check.  0, or 65 with the reason. */
int kcfg_from_msgpack(const msgpack_object *map, gpt_config *c, const char *where, char *err,
                      size_t errsz);
int kcfg_from_json(const jval *obj, gpt_config *c, const char *where, char *err, size_t errsz);
/* Only the fields the JSON has overwrite c (a plain HF file may have none): for --init,
 * where options and presets fill the rest.  0, or 65 for a field that is not a small
 * whole number. */
int kcfg_merge_json(const jval *obj, gpt_config *c, const char *where, char *err, size_t errsz);

/* Hugging Face's GPT-2 config.json: n_layer, n_embd, n_head, n_positions (or n_ctx) and
 * vocab_size must be there; what kiln's GPT cannot be is refused (65) by name:
 * layer_norm_epsilon other than 1e-5, an activation other than gelu_new (GELU's tanh form),
 * n_inner other than 4 * n_embd, a model_type other than gpt2. */
int kcfg_from_hf(const jval *obj, gpt_config *c, const char *where, char *err, size_t errsz);
/* c as GPT2LMHeadModel's config.json into buf (at least 1024 bytes); eot: the id of
 * <|endoftext|> for bos/eos_token_id, or -1. */
void kcfg_hf_json(const gpt_config *c, long eot, char *buf, size_t n);

/* 0 when kt is F32 of exactly t's shape (a transposed [in,out] has the right count but the
 * wrong meaning), else 65 with "WHERE: NAME is F16 [3, 4], the model's config needs F32
 * [4, 3]" in err. */
int kcfg_check_tensor(const gpt_tensor *t, const ktensor *kt, const char *where, char *err,
                      size_t errsz);

#endif
