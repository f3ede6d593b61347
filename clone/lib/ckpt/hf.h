/* hf — Hugging Face GPT-2 directories in and out.
 *
 * A directory DIR in the ecosystem's shape:
 *   DIR/config.json        GPT-2's config (n_layer, n_embd, n_head, n_positions, vocab_size,
 *                          layer_norm_epsilon, ...; lib/ckpt/config.h kcfg_from_hf reads it)
 *   DIR/model.safetensors  F32 tensors with transformer.* names (or GPT2Model's bare h.*,
 *                          wte.*, ...), Conv1D weights [in, out] as kiln keeps them, and
 *                          optionally lm_head.weight, which must equal the tied wte
 *   DIR/encoder.json, DIR/vocab.bpe   optional: the BPE vocabulary (lib/data/bpe.h)
 * kckpt_open (lib/ckpt/store.h) opens such a directory, or a model.safetensors without kiln's
 * metadata beside a config.json, as a checkpoint with kiln's config and tokenizer, so kiln
 * train --init, sample and eval take it as they take kiln's own files. */
#ifndef KILN_HF_H
#define KILN_HF_H

#include <stdbool.h>
#include <stddef.h>

#include "ckpt/store.h"
#include "data/tokenizer.h"
#include "model/gpt.h"
#include "model/lora.h"

/* Whether path is a directory; *model gets DIR/model.safetensors (malloc'd) when it is. */
bool khf_is_hf(const char *path, char **model);
/* Whether a config.json sits beside the file at path. */
bool khf_has_config(const char *path);
/* Fill ck->config and ck->tokenizer (when the directory has encoder.json and vocab.bpe) from
 * the directory of ck->path, and check lm_head.weight.  0, or 65 naming the file. */
int khf_read(kckpt *ck, char *err, size_t errsz);

/* Write DIR (created if missing): config.json, model.safetensors (kiln's tensors, with kiln's
 * config and tokenizer in __metadata__ as well), and encoder.json + vocab.bpe when tok is
 * BPE.  0, 65 (a scalar-head model, which GPT2LMHeadModel cannot hold) or 74. */
int khf_export(const gpt *m, const ktokenizer *tok, const char *dir, char *err, size_t errsz);

/* PEFT's adapter_config.json for kiln's LoRA adapters (lib/model/lora.h: PEFT's tensor names
 * and layouts already) into DIR: peft_type LORA, task_type CAUSAL_LM, r, lora_alpha,
 * lora_dropout, target_modules (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj),
 * fan_in_fan_out true (GPT-2's Conv1D), bias none.  With the adapter file beside it as
 * adapter_model.safetensors (kiln ckpt links it), peft's PeftModel.from_pretrained(base, DIR)
 * loads it.  0, or 74 naming the file. */
int khf_peft_config(const char *dir, const lora_config *cfg, char *err, size_t errsz);

#endif
