/* fuzz_png — libFuzzer target: a PNG file's bytes decoded as kiln load reads them
 * (lib/data/png.h kpng_decode, as stored and as RGB), bounded to 2^20 pixels
 * (tests/fuzz/run.sh). */
#include <stddef.h>
#include <stdint.h>

#include "data/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    kimage im = {0};
    char err[256];
    for (int want = 0; want <= 3; want += 3)
        if (kpng_decode(data, size, want, 1u << 20, &im, err, sizeof err)) {
            volatile uint8_t last = im.data[(size_t)im.h * im.w * im.c - 1];
            (void)last;
        }
    kimage_free(&im);
    return 0;
}
