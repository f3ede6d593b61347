/* embed — pooled, normalised final states. */
#include "model/embed.h"

#include <math.h>

void l2_normalise_rows(float *v, int64_t n, int C) {
    for (int64_t r = 0; r < n; r++) {
        float *row = v + r * C;
        double s = 0;
        for (int c = 0; c < C; c++) s += (double)row[c] * row[c];
        float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int c = 0; c < C; c++) row[c] *= inv;
    }
}

void gpt_embed(gpt *m, const int32_t *x, const uint8_t *mask, int B, int T, gpt_pool_mode mode,
               float *out) {
    gpt_forward_hidden(m, x, B, T);
    gpt_pool(m, mask, mode, out);
    l2_normalise_rows(out, B, m->cfg.n_embd);
}
