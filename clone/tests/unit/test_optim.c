/* test_optim — the schedule's shape, AdamW's first step against the closed form (with and
 * without clipping and decay), the global norm, and naming the first non-finite tensor. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "model/optim.h"

int main(void) {
    /* warm-up 10 then cosine to lr/10 at step 110 */
    CHECK_NEAR(lr_at(0, 1.0, 10, 110), 0.1, 1e-12);
    CHECK_NEAR(lr_at(9, 1.0, 10, 110), 1.0, 1e-12);
    CHECK_NEAR(lr_at(10, 1.0, 10, 110), 1.0, 1e-12);
    CHECK_NEAR(lr_at(60, 1.0, 10, 110), 0.55, 1e-12);
    CHECK_NEAR(lr_at(110, 1.0, 10, 110), 0.1, 1e-12);
    CHECK_NEAR(lr_at(500, 1.0, 10, 110), 0.1, 1e-12);
    CHECK_NEAR(lr_at(50, 1.0, 10, 0), 1.0, 1e-12); /* no total: constant after warm-up */
    for (uint64_t s = 11; s < 110; s++) CHECK(lr_at(s, 1.0, 10, 110) < lr_at(s - 1, 1.0, 10, 110));

    kpool *pool = kpool_create(3);
    gpt_tensor t[2] = {{.name = "matrix", .offset = 0, .numel = 3, .ndim = 2, .decay = true},
                       {.name = "bias", .offset = 3, .numel = 2, .ndim = 1, .decay = false}};
    float p[5] = {1, -2, 0.5f, 1, 1}, g[5] = {0.3f, -0.4f, 0, 0, 1e-3f};
    CHECK_NEAR(grad_global_norm(pool, g, 5), sqrt(0.09 + 0.16 + 1e-6), 1e-6);
    /* First Adam step: m/sqrt(v) = sign(g) (bias-corrected), minus decoupled decay. */
    adamw *o = adamw_create(5);
    adamw_update(o, pool, p, g, t, 2, 0.01, 0.5);
    CHECK_NEAR(p[0], 1 * (1 - 0.01 * 0.1) - 0.01, 1e-6);
    CHECK_NEAR(p[1], -2 * (1 - 0.01 * 0.1) + 0.01, 1e-6);
    CHECK_NEAR(p[2], 0.5 * (1 - 0.01 * 0.1), 1e-6); /* zero gradient: decay only */
    CHECK_NEAR(p[3], 1.0, 1e-7);                    /* no decay on vectors */
    CHECK_NEAR(p[4], 1.0 - 0.01, 1e-6);
    CHECK(o->step == 1);
    /* Clipping: a norm of 4 scales the gradient by 1/4, visible in the first moment. */
    adamw *o2 = adamw_create(5);
    float q[5] = {0};
    adamw_update(o2, pool, q, g, t, 2, 0.01, 4.0);
    CHECK_NEAR(o2->m[0], 0.1 * 0.3 / 4.0, 1e-7);
    CHECK_NEAR(o2->v[1], 0.05 * 0.4 * 0.4 / 16.0, 1e-8);

    CHECK(first_nonfinite(g, t, 2) == -1);
    g[4] = NAN;
    CHECK(first_nonfinite(g, t, 2) == 1);
    g[1] = INFINITY;
    CHECK(first_nonfinite(g, t, 2) == 0);
    CHECK(!isfinite(grad_global_norm(pool, g, 5)));
    adamw_free(o);
    adamw_free(o2);
    kpool_free(pool);
    return check_report("optim");
}
