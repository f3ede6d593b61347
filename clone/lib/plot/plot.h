/* plot — line charts of named series into an RGB image: axes with "nice" ticks (1, 2, 5 x
 * 10^k; decades on a log scale), grid, labels, legend, lines, and markers on sparse series.
 * `kiln plot` feeds it the loss of train and eval metrics; lib/png writes the image. */
#ifndef KILN_PLOT_H
#define KILN_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include "data/image.h"

typedef struct kplot kplot;

typedef struct {
    const char *title, *xlabel, *ylabel; /* NULL: none */
    bool log_y;                          /* points with y <= 0 are left out */
    int scale;                           /* font and line size, 1 or more (2 reads well) */
} kplot_style;

kplot *kplot_new(void);
void kplot_free(kplot *p);
/* Add a point to the series of that name (created on first use; series keep the order in
 * which they first appear, and the legend lists them so).  Non-finite values are dropped. */
void kplot_add(kplot *p, const char *series, double x, double y);
/* Points kept so far, all series together. */
size_t kplot_points(const kplot *p);
/* Draw into im, which must be RGB (c = 3), at least 200x120 pixels; points of a series are
 * joined in order of x. */
void kplot_render(const kplot *p, const kplot_style *style, kimage *im);

/* ---- metric families ------------------------------------------------------------------------
 * Metrics are grouped by name so that related ones share a plot and a summary line, whatever
 * stage or objective adds them (docs/stages-ckpt.md, "kiln plot"):
 *   "objective/kl", "objective/rlhf_reward"  -> family "objective", member "kl", ...
 *   "accuracy@1", "accuracy@10"              -> family "accuracy@k", member "@1", "@10"
 *   "loss", "lr", "accuracy"                 -> a family of its own, member "" (the name)
 * Returns false for a field that is bookkeeping rather than a metric (step, tokens,
 * elapsed_s, epoch, cursor, optim_bytes, seq).  family gets at most n-1 bytes; member points
 * into field. */
bool kplot_family(const char *field, char *family, size_t n, const char **member);

#endif
