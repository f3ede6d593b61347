/* rng — a counter-based random generator (Philox4x32-10) keyed by (seed, record id, epoch,
 * stream).  A record's draws are a pure function of those four numbers, so they never depend
 * on the order records arrive in, on batch boundaries, or on how many workers or threads
 * share the work (docs/architecture.md).  `stream` separates independent uses (augment, shuffle...). */
#ifndef KILN_RNG_H
#define KILN_RNG_H

#include <stdint.h>

/* Well-known streams, so two stages never draw the same numbers by accident. */
enum { KRNG_AUGMENT = 1, KRNG_SHUFFLE = 2, KRNG_PALETTE = 3, KRNG_NOISE = 4, KRNG_PAIRS = 5 };

typedef struct krng {
    uint32_t key[2];
    uint32_t ctr[4]; /* id lo, id hi, epoch lo, block number */
    uint32_t out[4]; /* the current block of outputs */
    int used;        /* outputs of `out` already handed out */
} krng;

/* The raw bijection: 10 rounds of Philox4x32 on one counter block. */
void krng_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

void krng_init(krng *r, uint64_t seed, uint64_t id, uint64_t epoch, uint64_t stream);
uint32_t krng_u32(krng *r);
uint64_t krng_u64(krng *r);
/* Uniform in [0, 1) with 53 random bits. */
double krng_uniform(krng *r);
/* Uniform in [lo, hi). */
double krng_range(krng *r, double lo, double hi);
/* Uniform integer in [0, n), without modulo bias; n > 0. */
uint64_t krng_below(krng *r, uint64_t n);
/* Standard normal (Box-Muller). */
double krng_normal(krng *r);

/* A 64-bit mixing function (splitmix64 finaliser), handy for hashing keys. */
uint64_t krng_mix64(uint64_t x);

#endif
