/* test_rng — Philox known-answer vectors and the order-independence that augment relies on. */
#include "check.h"
#include "core/rng.h"

#include <string.h>

static void known_answers(void) {
    /* Random123's kat_vectors for philox4x32_10. */
    uint32_t out[4];
    uint32_t c0[4] = {0, 0, 0, 0}, k0[2] = {0, 0};
    krng_philox(c0, k0, out);
    CHECK(out[0] == 0x6627e8d5u && out[1] == 0xe169c58du && out[2] == 0xbc57ac4cu &&
          out[3] == 0x9b00dbd8u);
    uint32_t c1[4] = {~0u, ~0u, ~0u, ~0u}, k1[2] = {~0u, ~0u};
    krng_philox(c1, k1, out);
    CHECK(out[0] == 0x408f276du && out[1] == 0x41c83b0eu && out[2] == 0xa20bc7c6u &&
          out[3] == 0x6d5451fdu);
    uint32_t c2[4] = {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u};
    uint32_t k2[2] = {0xa4093822u, 0x299f31d0u};
    krng_philox(c2, k2, out);
    CHECK(out[0] == 0xd16cfe09u && out[1] == 0x94fdccebu && out[2] == 0x5001e420u &&
          out[3] == 0x24126ea1u);
}

static void keyed_draws(void) {
    /* The same key gives the same draws, whatever was drawn for other records in between. */
    krng a, b, other;
    krng_init(&a, 42, 7, 3, KRNG_AUGMENT);
    uint64_t first[10];
    for (int i = 0; i < 10; i++) first[i] = krng_u64(&a);
    krng_init(&other, 42, 8, 3, KRNG_AUGMENT);
    for (int i = 0; i < 5; i++) krng_u64(&other);
    krng_init(&b, 42, 7, 3, KRNG_AUGMENT);
    int same = 1;
    for (int i = 0; i < 10; i++) same &= krng_u64(&b) == first[i];
    CHECK(same);
    /* Each part of the key changes the draws. */
    krng c;
    krng_init(&c, 43, 7, 3, KRNG_AUGMENT);
    CHECK(krng_u64(&c) != first[0]);
    krng_init(&c, 42, 7, 4, KRNG_AUGMENT);
    CHECK(krng_u64(&c) != first[0]);
    krng_init(&c, 42, 7, 3, KRNG_SHUFFLE);
    CHECK(krng_u64(&c) != first[0]);
    krng_init(&c, 42, 7 + (1ull << 32), 3, KRNG_AUGMENT);
    CHECK(krng_u64(&c) != first[0]);
}

static void distributions(void) {
    krng r;
    krng_init(&r, 1, 0, 0, 0);
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
    int counts[7] = {0}, inrange = 1;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = krng_uniform(&r);
        inrange &= u >= 0 && u < 1;
        sum += u, sum2 += u * u;
        double z = krng_normal(&r);
        nsum += z, nsum2 += z * z;
        counts[krng_below(&r, 7)]++;
    }
    CHECK(inrange);
    CHECK_NEAR(sum / n, 0.5, 0.01);
    CHECK_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 0.01);
    CHECK_NEAR(nsum / n, 0.0, 0.01);
    CHECK_NEAR(nsum2 / n, 1.0, 0.02);
    for (int k = 0; k < 7; k++) CHECK_NEAR(counts[k] / (double)n, 1.0 / 7, 0.01);
    double x = krng_range(&r, -2, 3);
    CHECK(x >= -2 && x < 3);
}

int main(void) {
    known_answers();
    keyed_draws();
    distributions();
    return check_report("rng");
}
