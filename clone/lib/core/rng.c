/* rng — Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", 2011). */
#include "core/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void krng_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

uint64_t krng_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void krng_init(krng *r, uint64_t seed, uint64_t id, uint64_t epoch, uint64_t stream) {
    /* The key hashes seed, stream and the (rarely used) high half of the epoch; the counter
     * carries id and the low epoch bits directly, so distinct records never share a block. */
    uint64_t key = krng_mix64(seed ^ krng_mix64(stream ^ krng_mix64(epoch >> 32)));
    r->key[0] = (uint32_t)key;
    r->key[1] = (uint32_t)(key >> 32);
    r->ctr[0] = (uint32_t)id;
    r->ctr[1] = (uint32_t)(id >> 32);
    r->ctr[2] = (uint32_t)epoch;
    r->ctr[3] = 0;
    r->used = 4;
}

uint32_t krng_u32(krng *r) {
    if (r->used == 4) {
        krng_philox(r->ctr, r->key, r->out);
        r->ctr[3]++;
        r->used = 0;
    }
    return r->out[r->used++];
}

uint64_t krng_u64(krng *r) {
    uint64_t hi = krng_u32(r);
    return hi << 32 | krng_u32(r);
}

double krng_uniform(krng *r) {
    return (double)(krng_u64(r) >> 11) * 0x1.0p-53;
}

double krng_range(krng *r, double lo, double hi) {
    return lo + (hi - lo) * krng_uniform(r);
}

uint64_t krng_below(krng *r, uint64_t n) {
    /* Rejection sampling: drop the top partial copy of [0, n). */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = krng_u64(r);
    while (x >= limit);
    return x % n;
}

double krng_normal(krng *r) {
    double u1 = krng_uniform(r), u2 = krng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}
