/* pporun — PPO against a reward stage, the loop behind kiln ppo (stages/ppo.c): prompts from
 * a reader, rollouts out to the reward command and back scored, the policy and its value head
 * updated by the engine's optimizer (lib/run/engine.h), metrics (TRL's names) and ckpt
 * records to a writer.  The arithmetic is lib/run/ppo.h; docs/stages-rlhf.md the wiring.
 *
 *     kppo_opts o;  kppo_opts_init(&o);  ...options...;  kppo_opts_resolve(&o);
 *     kppo_train(&o, reader, writer);      then the stage's kiln_finish */
#ifndef KILN_PPORUN_H
#define KILN_PPORUN_H

#include <stdint.h>

#include "run/engine.h"
#include "run/ppo.h"
#include "stream/stream.h"

typedef struct kppo_opts {
    kengine_opts e; /* the model (--init, --lora, --train), lr, warm-up, seed, threads */
    const char *resume, *reward_cmd; /* reward_cmd: a command, or a ZeroMQ URL (rollouts out) */
    const char *reward_in;           /* with a URL: where the answers come in */
    int prompts, K, max_new, epochs, minibatch;
    bool have_max_new; /* an image model's completions are its pixels: --max-new must match */
    uint64_t iterations, every;
    double target_kl, kl_horizon;
    ppo_config pc;
} kppo_opts;

/* Defaults: 8 prompts x K 4 an iteration, 32 new tokens, 4 epochs of minibatches of 8, 20
 * iterations, TRL's PPO constants (ppo_config_default). */
void kppo_opts_init(kppo_opts *o);
/* Check the combination and fill what depends on it (the engine's steps, lr 1e-5 or with
 * LoRA 1e-4, no warm-up; with --lora the value head trains too); exits 2 on a bad one. */
void kppo_opts_resolve(kppo_opts *o);
/* The whole run, once per process (its state is static, for the exit hook that writes the
 * last ckpt): until --iterations, a stop signal or a gone downstream; the last ckpt
 * written at the end.  A reward stage that dies (74) or answers NaN or garbage (65) ends the
 * process after the ckpt record of the last finished iteration. */
void kppo_train(const kppo_opts *o, kreader *r, kwriter *w);

#endif
