/* estimate — how long a training run takes, on what, for how much, before it starts
 * (`kiln estimate`, stages/estimate.c).
 *
 *   plan      parameters, trainable parameters, FLOPs per token and the memory kiln train
 *             holds (weights, gradients, AdamW moments, activations) for a model shape,
 *             micro-batch and fine-tuning specs, computed without building the model;
 *   this CPU  its FP32 FMA peak: the measured clock x physical cores x FLOPs per cycle;
 *   measure   a few real training steps (forward, backward, clipping, AdamW) of the same
 *             configuration, the batch shrunk when a step would take too long;
 *   hardware  a table of rows `name=... tflops=... eff=... mem=... price=...` (a file,
 *             share/kiln/hardware.txt, and --hw flags that add or override rows);
 *   cost      tokens / (peak x efficiency / FLOPs per token) + steps x a row's fixed cost
 *             per step, N machines of a kind dividing the time, plus each optimizer step's
 *             ring all-reduce of the trained gradients over the network (lib/run/dist.h
 *             does it after the backward pass, not overlapped).
 *
 * Functions that can fail on the user's input return 0 or an exit code (2 options, 65 a
 * bad table row, 74 an unreadable file) with the message in err. */
#ifndef KILN_ESTIMATE_H
#define KILN_ESTIMATE_H

#include <stdbool.h>
#include <stddef.h>

#include "model/gpt.h"

/* ---- the plan ------------------------------------------------------------------------------- */

typedef struct kest_config {
    gpt_config cfg;                    /* the model, vocabulary included */
    int B, T;                          /* the micro-batch: rows and tokens per row */
    int threads;                       /* of kiln's pool (0: every CPU) */
    const char *freeze, *lora, *train; /* kiln train's fine-tuning specs, or NULL */
    int accum;                         /* micro-batches per optimizer step (0: 1) */
    double net_gbit_s;                 /* the link between machines (0: compute only) */
} kest_config;

/* Bytes kiln train holds for a configuration (kiln's FP32 layout; lib/model/gpt.c
 * ensure_acts lists every activation buffer this counts). */
typedef struct kest_memory {
    double weights, grads, optim, acts, lora, total;
} kest_memory;

typedef struct kest_plan {
    size_t n_params, n_trainable, n_lora; /* n_trainable includes the adapters */
    double model_flops;                   /* per token: gpt_flops_per_token, 6N + 12LTC */
    double step_flops;                    /* per token, what a step does: less when frozen */
    kest_memory mem;
    int lora_r, low_layer; /* LoRA rank (0: none); the lowest block backward reaches */
    bool lora_dropout;
} kest_plan;

/* The plan of c; 2 with the reason in err for a bad shape or fine-tuning spec. */
int kest_plan_make(const kest_config *c, kest_plan *p, char *err, size_t errsz);
/* The memory of the plan's model at another micro-batch (for "what would fit"). */
kest_memory kest_memory_at(const kest_config *c, const kest_plan *p, int B);

/* ---- hardware ------------------------------------------------------------------------------- */

typedef struct kest_hw {
    char name[32];
    double tflops;  /* peak, TFLOP/s, at the precision training would use there */
    double eff;     /* the share of the peak a training step reaches, (0, 1] */
    double mem_gb;  /* memory for the model, 1e9 bytes (0: unknown, not checked) */
    double price;   /* US dollars per hour of one machine (0: free or unknown) */
    double step_ms; /* a fixed cost per step besides the FLOPs (kernel launches), ms */
} kest_hw;

typedef struct kest_hw_table {
    kest_hw *rows;
    int n, cap;
} kest_hw_table;

/* Add a row, or override the fields given of the row with that name:
 * "name=h100,tflops=989,eff=0.4,mem=80,price=2.5,step_ms=5" (commas or blanks between fields).
 * A new row needs tflops; eff defaults to 0.4.  2 with the reason in err. */
int kest_hw_add(kest_hw_table *t, const char *spec, char *err, size_t errsz);
/* Every row of a table file: one spec a line, '#' starts a comment.  74 when it cannot be
 * read, 65 for a bad row ("FILE:LINE: ..."). */
int kest_hw_load(kest_hw_table *t, const char *path, char *err, size_t errsz);
/* The row with that name, or NULL. */
kest_hw *kest_hw_find(kest_hw_table *t, const char *name);
void kest_hw_free(kest_hw_table *t);

/* ---- this machine --------------------------------------------------------------------------- */

typedef struct kest_cpu {
    double ghz;          /* measured clock (a dependent chain of adds), or /proc/cpuinfo's */
    int cores;           /* physical cores the run's threads occupy */
    int flops_per_cycle; /* FP32 FMA FLOPs per cycle per core (kest_cpu_flops_per_cycle) */
    const char *isa;     /* what decided it: "AVX-512, two 256-bit FMA pipes (Zen 4)" ... */
    double peak_gflops;  /* ghz x cores x flops_per_cycle */
    double mem_gb;       /* physical memory */
} kest_cpu;

/* Peak FP32 FMA FLOPs per core per cycle for an x86 CPU: SIMD lanes x 2 (an FMA is two
 * FLOPs) x FMA pipes.  vendor_amd and family from CPUID leaf 1; the features from CPUID. */
int kest_cpu_flops_per_cycle(bool avx512, bool avx2_fma, bool vendor_amd, int family,
                             const char **isa);
/* Measure this machine for a run on `threads` threads (0: every CPU). */
void kest_cpu_measure(kest_cpu *cpu, int threads);

/* ---- a measured step ------------------------------------------------------------------------ */

typedef struct kest_measured {
    int B, T;            /* the micro-batch that ran (smaller than asked when reduced) */
    int steps;           /* timed steps */
    double step_s;       /* their median */
    double gflops;       /* achieved: step FLOPs per token x tokens / step_s */
    double tokens_per_s; /* at the asked configuration (scaled by FLOPs when reduced) */
    bool reduced;
} kest_measured;

/* Time real training steps of c for about budget_s seconds (one untimed first step, then at
 * least 3).  guess_gflops sizes the batch: when a step of c would take more than a quarter of
 * the budget at that rate, B and then T shrink (T not below 128) and the rate measured there
 * is scaled to c by FLOPs. */
int kest_measure(const kest_config *c, const kest_plan *p, double budget_s, double guess_gflops,
                 kest_measured *out, char *err, size_t errsz);

/* ---- cost ----------------------------------------------------------------------------------- */

typedef struct kest_row {
    double tokens_per_s, seconds, cost; /* on `machines` of the kind together */
    bool fits;                          /* the run's memory fits one machine (or unknown) */
    int max_B;                          /* when it does not: the largest B that fits, or 0 */
} kest_row;

/* Seconds one ring all-reduce of the trained gradients (FP32) takes on `machines` machines
 * linked at gbit_s: each sends and receives 2(N-1)/N x the gradient bytes.  0 for one. */
double kest_allreduce_s(const kest_plan *p, int machines, double gbit_s);

/* The run of `tokens` tokens on `machines` machines of kind hw, each taking steps of c's
 * B x T tokens, and with c->net_gbit_s an all-reduce every c->accum of them.  tokens_per_s > 0
 * replaces the rate from the row's peak, efficiency and step_ms (this machine, measured). */
kest_row kest_cost(const kest_config *c, const kest_plan *p, const kest_hw *hw, int machines,
                   double tokens, double tokens_per_s);

/* "42 s", "3.5 min", "7.2 h", "12 days", "3.1 years" */
void kest_fmt_duration(double seconds, char *buf, size_t n);
/* "830", "22.0 k", "17.3 M": a rate or a count in a column */
void kest_fmt_count(double v, char *buf, size_t n);
/* "512 KB", "3.4 MB", "1.27 GB" (1e3 steps) */
void kest_fmt_bytes(double bytes, char *buf, size_t n);

#endif
