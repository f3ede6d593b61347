/* augment — random image transforms for training data, each applied with a probability.
 *
 * An op is written NAME[:ARGS][@P]; P is the chance the op is applied (default 1, and 0.5
 * for the flips, as torchvision's RandomHorizontalFlip does):
 *   hflip, vflip            mirror left-right / top-bottom
 *   crop:PAD[,reflect]      pad PAD pixels on every side (zeros, or mirrored), then take a
 *                           random crop of the original size
 *   shift:PX                translate by up to PX pixels in x and y, zeros shifted in
 *   rotate:DEG              rotate by a uniform angle in [-DEG, DEG] about the centre
 *                           (bilinear, zeros outside)
 *   scale:LO-HI             zoom about the centre by a uniform factor in [LO, HI]
 *   jitter:B[,C[,S[,H]]]    brightness, contrast, saturation factors uniform in
 *                           [max(0,1-x), 1+x] and a hue shift uniform in [-H, H] turns
 *                           (H <= 0.5), as torchvision's ColorJitter (fixed order B,C,S,H)
 *   noise:SIGMA             add Gaussian noise of SIGMA pixel levels (0..255 scale)
 *   cutout:N,SIZE           N squares of SIZExSIZE pixels at random centres set to 0
 *   gray                    replace colour by its luma (channel count kept)
 * Alpha (the 4th channel) is moved by geometric ops and left alone by colour ops.
 * Every random number comes from the caller's krng, keyed by (seed, id, epoch), so a
 * record's result never depends on anything but those. */
#ifndef KILN_AUGMENT_H
#define KILN_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>

#include "data/image.h"
#include "core/rng.h"

typedef enum {
    KAUG_HFLIP,
    KAUG_VFLIP,
    KAUG_CROP,
    KAUG_SHIFT,
    KAUG_ROTATE,
    KAUG_SCALE,
    KAUG_JITTER,
    KAUG_NOISE,
    KAUG_CUTOUT,
    KAUG_GRAY,
} kaug_kind;

typedef struct kaug_op {
    kaug_kind kind;
    double p;      /* probability of applying */
    double arg[4]; /* the op's numbers, in the order written */
    bool reflect;  /* crop: mirror padding instead of zeros */
} kaug_op;

/* Parse one op.  false with a reason in err when the spec is malformed. */
bool kaug_parse(const char *spec, kaug_op *op, char *err, size_t errlen);

/* Apply ops in order to im (in place; scratch is a reusable work image). */
void kaug_apply(const kaug_op *ops, int nops, krng *rng, kimage *im, kimage *scratch);

#endif
